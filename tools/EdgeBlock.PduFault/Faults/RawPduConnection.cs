using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using EdgeBlock.Nvme;
using EdgeBlock.Nvme.Tcp;

namespace EdgeBlock.PduFault;

/// <summary>
/// A bare NVMe/TCP connection for sending hand-made (and malformed) PDUs and reading what comes back.
/// No initiator logic: every byte on the wire is the caller's. Shared by the PduFault tool and the target tests.
/// </summary>
public sealed class RawPduConnection : IAsyncDisposable
{
    /// <summary>Refuse to buffer anything bigger: a fault probe never asks for data.</summary>
    private const int MaxPduBytes = 1024 * 1024;

    private readonly Socket _socket;

    private RawPduConnection(Socket socket) => _socket = socket;

    public static async Task<RawPduConnection> ConnectAsync(string host, int port, CancellationToken ct)
    {
        IPAddress[] addresses = IPAddress.TryParse(host, out var ip) ? [ip] : await Dns.GetHostAddressesAsync(host, ct).ConfigureAwait(false);
        if (addresses.Length == 0) throw new IOException($"{host} has no address");
        var socket = new Socket(addresses[0].AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(new IPEndPoint(addresses[0], port), ct).ConfigureAwait(false);
            return new RawPduConnection(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public async Task SendAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct)
    {
        while (!bytes.IsEmpty)
        {
            int n = await _socket.SendAsync(bytes, SocketFlags.None, ct).ConfigureAwait(false);
            bytes = bytes[n..];
        }
    }

    /// <summary>Reads one whole PDU (common header, then PLEN - 8 more bytes).</summary>
    public async Task<byte[]> ReceivePduAsync(CancellationToken ct)
    {
        var header = new byte[PduHeader.Size];
        await ReceiveExactlyAsync(header, ct).ConfigureAwait(false);
        uint plen = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4));
        if (plen < PduHeader.Size || plen > MaxPduBytes) throw new IOException($"received a PDU (type {header[0]:X2}h) with PLEN {plen}");
        var pdu = new byte[plen];
        header.CopyTo(pdu, 0);
        await ReceiveExactlyAsync(pdu.AsMemory(PduHeader.Size), ct).ConfigureAwait(false);
        return pdu;
    }

    private async Task ReceiveExactlyAsync(Memory<byte> buffer, CancellationToken ct)
    {
        while (!buffer.IsEmpty)
        {
            int n = await _socket.ReceiveAsync(buffer, SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0) throw new IOException("the controller closed the connection before sending a whole PDU");
            buffer = buffer[n..];
        }
    }

    /// <summary>True once the peer has closed (EOF or reset); false if more bytes arrive instead.</summary>
    public async Task<bool> WaitForCloseAsync(CancellationToken ct)
    {
        var buffer = new byte[256];
        try
        {
            int n = await _socket.ReceiveAsync(buffer, SocketFlags.None, ct).ConfigureAwait(false);
            return n == 0;
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
        {
            return true;
        }
    }

    /// <summary>ICReq, then the ICResp (which must grant the digests asked for).</summary>
    public async Task<byte[]> InitializeAsync(bool headerDigest, bool dataDigest, CancellationToken ct)
    {
        await SendAsync(ICReq(headerDigest, dataDigest), ct).ConfigureAwait(false);
        var resp = await ReceivePduAsync(ct).ConfigureAwait(false);
        if (resp[0] != (byte)PduType.ICResp || resp.Length != PduHeader.IcRespLength)
            throw new IOException($"expected an ICResp after the ICReq, got PDU type {resp[0]:X2}h of {resp.Length} bytes");
        byte wanted = (byte)((headerDigest ? InitializeConnection.DigestHeader : 0) | (dataDigest ? InitializeConnection.DigestData : 0));
        if (InitializeConnection.Digest(resp) != wanted) throw new IOException($"ICResp granted digests {InitializeConnection.Digest(resp)}, asked {wanted}");
        return resp;
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }

    // ---- PDU builders ----------------------------------------------------------------------

    public static byte[] ICReq(bool headerDigest = false, bool dataDigest = false)
    {
        var pdu = new byte[PduHeader.IcReqLength];
        byte digest = (byte)((headerDigest ? InitializeConnection.DigestHeader : 0) | (dataDigest ? InitializeConnection.DigestData : 0));
        InitializeConnection.Write(pdu, PduType.ICReq, pda: 0, digest, dword3: 0);
        return pdu;
    }

    /// <summary>A CapsuleCmd PDU without in-capsule data (header digest appended when asked).</summary>
    public static byte[] CapsuleCmd(ReadOnlySpan<byte> sqe, bool headerDigest = false)
    {
        int plen = PduHeader.CapsuleCmdLength + (headerDigest ? PduHeader.DigestSize : 0);
        var pdu = new byte[plen];
        new PduHeader(PduType.CapsuleCmd, headerDigest ? PduFlags.Hdgstf : PduFlags.None, PduHeader.CapsuleCmdLength, 0, (uint)plen).Write(pdu);
        sqe[..SubmissionQueueEntry.Size].CopyTo(pdu.AsSpan(PduHeader.Size));
        if (headerDigest) Crc32C.Write(pdu.AsSpan(PduHeader.CapsuleCmdLength), pdu.AsSpan(0, PduHeader.CapsuleCmdLength));
        return pdu;
    }

    /// <summary>A Keep Alive SQE: harmless, no data.</summary>
    public static byte[] KeepAliveSqe(ushort cid)
    {
        var sqe = new byte[SubmissionQueueEntry.Size];
        _ = new SubmissionQueueEntryWriter(sqe) { Opcode = (byte)AdminOpcode.KeepAlive, CommandId = cid, Flags = 0x40 };
        return sqe;
    }

    /// <summary>
    /// An admin-queue Connect whose 1 KiB of data is NOT in the capsule (transport SGL): the controller
    /// must answer with an R2T, which gives a real transfer tag to misuse.
    /// </summary>
    public static byte[] ConnectSqeWithoutInCapsuleData(ushort cid)
    {
        var sqe = new byte[SubmissionQueueEntry.Size];
        var w = new SubmissionQueueEntryWriter(sqe)
        {
            Opcode = (byte)AdminOpcode.FabricsCommand, Flags = 0x40, CommandId = cid, FabricsType = FabricsCommandType.Connect,
            Cdw10 = 0, Cdw11 = 31, // QID 0, SQSIZE 31 (32 entries)
        };
        w.SetTransportData(Connect.DataSize);
        return sqe;
    }

    public static byte[] H2CData(ushort commandId, ushort transferTag, uint dataOffset, int dataLength, bool last)
    {
        int plen = PduHeader.DataLength + dataLength;
        var pdu = new byte[plen];
        DataPdu.WriteHeader(pdu, PduType.H2CData, last ? PduFlags.LastPdu : PduFlags.None, PduHeader.DataLength, (uint)plen,
            commandId, transferTag, dataOffset, (uint)dataLength);
        return pdu;
    }
}
