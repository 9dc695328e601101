using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EdgeBlock.Nvme;
using EdgeBlock.Nvme.Tcp;

namespace EdgeBlock.Initiator;

/// <summary>
/// One NVMe/TCP connection = one queue pair, host side (Linux drivers/nvme/host/tcp.c behaves alike):
/// ICReq/ICResp with optional digests, then command capsules with in-capsule data when the write fits,
/// H2CData after an R2T otherwise, C2HData and CapsuleResp back. Many commands may be outstanding;
/// one receive loop reads the socket; it writes what a batch of received PDUs produced itself (next commands,
/// H2CData), and a send loop writes what other threads submit; one of them at a time holds the writer role
/// and batches PDUs per send.
/// Command slots are preallocated and back the returned ValueTasks, so steady-state I/O allocates nothing.
/// NVMe statuses come back as values; transport failures fail every outstanding command with an IOException.
/// </summary>
public sealed partial class NvmeTcpQueue : IAsyncDisposable
{
    internal const int CidIndexBits = 12;
    /// <summary>Slot index lives in the low 12 bits of the command identifier, a generation in the top 4.</summary>
    public const int MaxQueueDepth = 1 << CidIndexBits;
    /// <summary>Capsules carry at most this much data whatever IOCCSZ says (bounds the send buffer).</summary>
    public const int MaxInCapsuleDataBytes = 64 * 1024;
    private const byte PsdtSgl = 0x40; // PSDT 01b: SGLs, as every fabrics command uses

    private readonly Socket _socket;
    private readonly PendingCommand[] _slots;
    private readonly ConcurrentQueue<int> _freeSlots = new();
    private readonly SemaphoreSlim _credits;
    private readonly CancellationTokenSource _closing = new();
    private Exception? _failure;
    private Task _receiveLoop = Task.CompletedTask;
    private Task _sendLoop = Task.CompletedTask;

    private NvmeTcpQueue(Socket socket, NvmeTcpQueueOptions options, IcResponse ic)
    {
        _socket = socket;
        HeaderDigest = ic.HeaderDigest;
        DataDigest = ic.DataDigest;
        ControllerPda = ic.Cpda;
        MaxH2CDataBytes = ic.MaxH2CData;
        QueueDepth = options.QueueDepth;
        InCapsuleDataBytes = Math.Clamp(options.InCapsuleDataBytes, 0, MaxInCapsuleDataBytes);
        _writeEveryPdus = Math.Max(8, options.QueueDepth / 2);
        RemoteEndPoint = socket.RemoteEndPoint?.ToString() ?? "?";
        _slots = new PendingCommand[options.QueueDepth];
        for (int i = 0; i < _slots.Length; i++)
        {
            _slots[i] = new PendingCommand(this, i, options.InlineCompletions);
            _freeSlots.Enqueue(i);
        }
        _credits = new SemaphoreSlim(options.QueueDepth, options.QueueDepth);
    }

    /// <summary>Queue identifier once a Connect succeeded on this queue (0 = admin).</summary>
    public ushort Qid { get; internal set; }
    public bool HeaderDigest { get; }
    public bool DataDigest { get; }
    /// <summary>CPDA from the ICResp: data in PDUs we send starts on (CPDA + 1) * 4 byte boundaries.</summary>
    public int ControllerPda { get; }
    /// <summary>MAXH2CDATA from the ICResp: the largest H2CData PDU payload the controller accepts.</summary>
    public int MaxH2CDataBytes { get; }
    public int QueueDepth { get; }
    public int InCapsuleDataBytes { get; }
    public string RemoteEndPoint { get; }
    public NvmeTcpQueueStatistics Statistics { get; } = new();

    /// <summary>Why the queue stopped (null while it works). A C2HTermReq shows up as <see cref="NvmeTcpTerminatedException"/>.</summary>
    public Exception? Failure => Volatile.Read(ref _failure);
    public bool IsOpen => Failure == null;

    /// <summary>Completes when the receive loop has ended (connection closed by either side).</summary>
    public Task Closed => _receiveLoop;

    /// <summary>Opens the TCP connection and exchanges ICReq/ICResp. Throws IOException when either fails.</summary>
    public static async Task<NvmeTcpQueue> ConnectAsync(string host, int port, NvmeTcpQueueOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new NvmeTcpQueueOptions();
        if (options.QueueDepth is < 2 or > MaxQueueDepth)
            throw new ArgumentOutOfRangeException(nameof(options), options.QueueDepth, $"queue depth must be 2..{MaxQueueDepth}");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.ConnectTimeout);
        Socket? socket = null;
        try
        {
            socket = await ConnectSocketAsync(host, port, timeout.Token).ConfigureAwait(false);
            var ic = await ExchangeIcAsync(socket, options, timeout.Token).ConfigureAwait(false);
            var queue = new NvmeTcpQueue(socket, options, ic);
            queue.Start();
            return queue;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            socket?.Dispose();
            throw new IOException($"connecting to {host}:{port} did not finish within {options.ConnectTimeout.TotalMilliseconds} ms (TCP connect and ICReq/ICResp)");
        }
        catch
        {
            socket?.Dispose();
            throw;
        }
    }

    private static async Task<Socket> ConnectSocketAsync(string host, int port, CancellationToken ct)
    {
        IPAddress[] addresses = IPAddress.TryParse(host, out var ip) ? [ip] : await Dns.GetHostAddressesAsync(host, ct).ConfigureAwait(false);
        SocketException? last = null;
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, port), ct).ConfigureAwait(false);
                return socket;
            }
            catch (SocketException ex)
            {
                socket.Dispose();
                last = ex;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
        throw new IOException($"cannot connect to {host}:{port}: {last?.Message ?? "no address"}", last);
    }

    private readonly record struct IcResponse(int Cpda, int MaxH2CData, bool HeaderDigest, bool DataDigest);

    private static async Task<IcResponse> ExchangeIcAsync(Socket socket, NvmeTcpQueueOptions options, CancellationToken ct)
    {
        var pdu = new byte[PduHeader.IcReqLength + PduHeader.MaxTermReqData];
        byte digest = (byte)((options.HeaderDigest ? InitializeConnection.DigestHeader : 0) | (options.DataDigest ? InitializeConnection.DigestData : 0));
        // HPDA 0: no alignment needed for data we receive; MAXR2T 0 (0's based): one R2T per command, as Linux asks.
        InitializeConnection.Write(pdu, PduType.ICReq, pda: 0, digest, dword3: 0);
        await SendAllAsync(socket, pdu.AsMemory(0, PduHeader.IcReqLength), ct).ConfigureAwait(false);

        await ReceiveExactlyAsync(socket, pdu.AsMemory(0, PduHeader.Size), ct).ConfigureAwait(false);
        var header = PduHeader.Read(pdu);
        if (header.Type == PduType.C2HTermReq && header.Plen is >= PduHeader.TermReqLength and <= PduHeader.TermReqLength + PduHeader.MaxTermReqData)
        {
            await ReceiveExactlyAsync(socket, pdu.AsMemory(PduHeader.Size, (int)header.Plen - PduHeader.Size), ct).ConfigureAwait(false);
            throw Terminated(0, pdu);
        }
        if (header.Type != PduType.ICResp || header.Hlen != PduHeader.IcRespLength || header.Plen != PduHeader.IcRespLength)
            throw new IOException($"expected an ICResp, got PDU type {(byte)header.Type:X2}h HLEN {header.Hlen} PLEN {header.Plen}");
        await ReceiveExactlyAsync(socket, pdu.AsMemory(PduHeader.Size, PduHeader.IcRespLength - PduHeader.Size), ct).ConfigureAwait(false);

        if (InitializeConnection.Pfv(pdu) != InitializeConnection.Pfv0)
            throw new IOException($"ICResp PFV {InitializeConnection.Pfv(pdu)} is not supported (expected 0)");
        int cpda = InitializeConnection.Pda(pdu);
        if (cpda > 31) throw new IOException($"ICResp CPDA {cpda} is above 31");
        uint maxH2CData = InitializeConnection.Dword3(pdu);
        if (maxH2CData < 4096 || maxH2CData % 4 != 0 || maxH2CData > int.MaxValue)
            throw new IOException($"ICResp MAXH2CDATA {maxH2CData} is invalid (must be a multiple of 4, at least 4096)");
        byte granted = InitializeConnection.Digest(pdu);
        bool hd = (granted & InitializeConnection.DigestHeader) != 0, dd = (granted & InitializeConnection.DigestData) != 0;
        if (hd != options.HeaderDigest || dd != options.DataDigest)
            throw new IOException($"digest negotiation failed: asked header {options.HeaderDigest} data {options.DataDigest}, controller answered header {hd} data {dd}");
        return new IcResponse(cpda, (int)maxH2CData, hd, dd);
    }

    private static async ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        while (!data.IsEmpty)
        {
            int n = await socket.SendAsync(data, SocketFlags.None, ct).ConfigureAwait(false);
            data = data[n..];
        }
    }

    private static async ValueTask ReceiveExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken ct)
    {
        while (!buffer.IsEmpty)
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0) throw new IOException("the controller closed the connection during connection setup");
            buffer = buffer[n..];
        }
    }

    private static NvmeTcpTerminatedException Terminated(ushort qid, ReadOnlySpan<byte> termReq)
    {
        var fes = TermReq.Fes(termReq);
        uint fei = TermReq.Fei(termReq);
        return new NvmeTcpTerminatedException(fes, fei, $"queue {qid}: the controller terminated the connection with a C2HTermReq (FES {(ushort)fes:X2}h {fes}, FEI {fei})");
    }

    private void Start()
    {
        _receiveLoop = Task.Run(ReceiveLoopAsync);
        _sendLoop = Task.Run(SendLoopAsync);
    }

    // ---- submission ---------------------------------------------------------------

    /// <summary>
    /// Sends a command. The queue fills in CID, PSDT and SGL1 (in-capsule data block when a write fits
    /// <see cref="InCapsuleDataBytes"/>, else a transport data block). <paramref name="data"/> is the
    /// write source or read destination and must stay untouched until the returned task completes;
    /// await it exactly once. Waits for a free slot when <see cref="QueueDepth"/> commands are outstanding.
    /// </summary>
    public ValueTask<NvmeCompletion> SubmitAsync(ReadOnlySpan<byte> sqe, Memory<byte> data = default, TransferDirection direction = TransferDirection.None)
    {
        if (sqe.Length < SubmissionQueueEntry.Size) throw new ArgumentException("an SQE is 64 bytes", nameof(sqe));
        if (direction == TransferDirection.None && !data.IsEmpty) throw new ArgumentException("data given for a command without a transfer direction", nameof(data));
        if (Failure != null) return ValueTask.FromException<NvmeCompletion>(CreateFailureException());
        if (!_credits.Wait(0)) return SubmitWhenSlotFreeAsync(sqe[..SubmissionQueueEntry.Size].ToArray(), data, direction);
        return SubmitCore(sqe, data, direction);
    }

    /// <summary>A command with host-to-controller data (write, compare, DSM); the data is only read.</summary>
    public ValueTask<NvmeCompletion> SubmitWriteAsync(ReadOnlySpan<byte> sqe, ReadOnlyMemory<byte> data) =>
        SubmitAsync(sqe, System.Runtime.InteropServices.MemoryMarshal.AsMemory(data), TransferDirection.HostToController);

    private async ValueTask<NvmeCompletion> SubmitWhenSlotFreeAsync(byte[] sqe, Memory<byte> data, TransferDirection direction)
    {
        try
        {
            await _credits.WaitAsync(_closing.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            throw CreateFailureException();
        }
        return await SubmitCore(sqe, data, direction).ConfigureAwait(false);
    }

    private ValueTask<NvmeCompletion> SubmitCore(ReadOnlySpan<byte> sqe, Memory<byte> data, TransferDirection direction)
    {
        // A credit guarantees a free slot: slots go back to the list before their credit is released.
        if (!_freeSlots.TryDequeue(out int index)) throw new InvalidOperationException("queue slot accounting is broken: a credit without a free slot");
        var slot = _slots[index];
        bool inCapsule = direction == TransferDirection.HostToController && data.Length > 0 && data.Length <= InCapsuleDataBytes;
        ushort cid = slot.Arm(direction, data, inCapsule);
        var entry = slot.Sqe.AsSpan();
        sqe[..SubmissionQueueEntry.Size].CopyTo(entry);
        BinaryPrimitives.WriteUInt16LittleEndian(entry[2..], cid);
        entry[1] = (byte)((entry[1] & 0x3F) | PsdtSgl);
        SglDescriptor.Write(entry.Slice(24, SglDescriptor.Size), 0, (uint)data.Length,
            inCapsule ? SglDescriptor.InCapsuleDataBlock : SglDescriptor.TransportDataBlock);
        var pending = slot.Pending;
        Enqueue(new SendItem(SendKind.Capsule, index, cid, 0, 0, 0));
        // Lost a race with Fail, which may have swept the slots before this one was armed.
        if (Failure != null) slot.TryFail(CreateFailureException());
        return pending;
    }

    internal void ReleaseSlot(PendingCommand slot)
    {
        _freeSlots.Enqueue(slot.Index);
        _credits.Release();
    }

    private PendingCommand? FindInFlight(ushort commandId)
    {
        int index = commandId & (MaxQueueDepth - 1);
        if (index >= _slots.Length) return null;
        var slot = _slots[index];
        return slot.State == PendingCommand.StateInFlight && slot.CommandId == commandId ? slot : null;
    }

    // ---- failure and shutdown -------------------------------------------------------

    /// <summary>Stops the queue once: closes the socket and fails every outstanding command.</summary>
    private void Fail(Exception error)
    {
        if (Interlocked.CompareExchange(ref _failure, error, null) != null) return;
        _closing.Cancel();
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        _socket.Dispose();
        _sendSignal.Set();
        foreach (var slot in _slots) slot.TryFail(CreateFailureException());
    }

    /// <summary>A fresh exception per waiter (one exception object must not be thrown on several threads).</summary>
    private Exception CreateFailureException()
    {
        var failure = Failure;
        Debug.Assert(failure != null);
        return failure switch
        {
            NvmeTcpTerminatedException t => new NvmeTcpTerminatedException(t.Fes, t.Fei, t.Message),
            ObjectDisposedException => new ObjectDisposedException(nameof(NvmeTcpQueue), $"queue {Qid} to {RemoteEndPoint} was closed by the host"),
            _ => new IOException(failure?.Message ?? "queue failed", failure),
        };
    }

    /// <summary>Closes the connection; outstanding commands fail with ObjectDisposedException.</summary>
    public async ValueTask DisposeAsync()
    {
        Fail(new ObjectDisposedException(nameof(NvmeTcpQueue), "queue closed by the host"));
        try { await _receiveLoop.ConfigureAwait(false); } catch (Exception) { }
        try { await _sendLoop.ConfigureAwait(false); } catch (Exception) { }
    }

    public override string ToString() => $"NVMe/TCP queue {Qid} to {RemoteEndPoint}";
}
