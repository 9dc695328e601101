using System.Buffers.Binary;
using System.Runtime.InteropServices;
using EdgeBlock.Interop;

namespace EdgeBlock.Transports.VhostUser.Tests;

/// <summary>
/// A minimal vhost-user front-end written for the tests, playing QEMU's part: a memfd as guest
/// memory (two regions, like QEMU's split around a hole), the protocol messages with fds over
/// SCM_RIGHTS, split virtqueues it fills by hand, eventfds it kicks and waits on. It can also send
/// anything a broken or hostile front-end might.
/// </summary>
internal sealed unsafe class RawVhostClient : IDisposable
{
    public const ulong Region0Gpa = 0;
    public const ulong Region1Gpa = 0x1_0000_0000;
    public const ulong RegionSize = 8 << 20;
    public const ulong UserBase = 0x7000_0000_0000;
    public const int QueueSize = 64;
    public const int QueueStride = 0x10000;       // ring area per queue in region 0
    public const int DataStride = 1 << 20;         // data area per queue in region 1

    private int _socket = -1;
    private int _memfd = -1;
    private readonly byte* _memory;
    private readonly Queue[] _queues;

    public sealed class Queue
    {
        public int Index;
        public int KickFd = -1, CallFd = -1, ErrFd = -1;
        public ushort AvailIdx;
        public ushort UsedSeen;
        public int NextDesc;
    }

    public RawVhostClient(string socketPath, int queues = 2)
    {
        _socket = Native.Socket(Native.AF_UNIX, Native.SOCK_STREAM | Native.SOCK_CLOEXEC, 0);
        Assert.True(Native.MakeAddress(socketPath, out Native.SockAddrUn address, out uint length));
        int rc = -1;
        for (int i = 0; i < 100 && rc != 0; i++)
        {
            rc = Native.Connect(_socket, &address, length);
            if (rc != 0)
            {
                Thread.Sleep(20);
            }
        }
        Assert.True(rc == 0, $"connect to {socketPath}: {Native.Describe(Native.LastError)}");
        byte[] name = "guest\0"u8.ToArray();
        fixed (byte* p = name)
        {
            _memfd = Native.MemfdCreate(p, Native.MFD_CLOEXEC);
        }
        Assert.True(_memfd >= 0);
        Assert.Equal(0, Native.Ftruncate(_memfd, (long)(2 * RegionSize)));
        nint m = Native.Mmap(0, (nuint)(2 * RegionSize), Native.PROT_READ | Native.PROT_WRITE, Native.MAP_SHARED, _memfd, 0);
        Assert.NotEqual(Native.MAP_FAILED, m);
        _memory = (byte*)m;
        _queues = new Queue[queues];
        for (int i = 0; i < queues; i++)
        {
            _queues[i] = new Queue { Index = i };
        }
    }

    public Queue Q(int index) => _queues[index];

    // Addresses ------------------------------------------------------------------------------------

    /// <summary>Host pointer of a guest physical address in our own mapping.</summary>
    public byte* Host(ulong gpa) => gpa >= Region1Gpa ? _memory + RegionSize + (gpa - Region1Gpa) : _memory + gpa;

    public nint HostAddress(ulong gpa) => (nint)Host(gpa);

    public static ulong RingGpa(int queue) => Region0Gpa + (ulong)(queue * QueueStride);
    public static ulong DescGpa(int queue) => RingGpa(queue);
    public static ulong AvailGpa(int queue) => RingGpa(queue) + 0x1000;
    public static ulong UsedGpa(int queue) => RingGpa(queue) + 0x2000;
    /// <summary>Scratch buffers (headers, status bytes, indirect tables) for a queue, in region 0.</summary>
    public static ulong ScratchGpa(int queue) => RingGpa(queue) + 0x4000;
    public static ulong DataGpa(int queue) => Region1Gpa + (ulong)(queue * DataStride);

    // Messages -------------------------------------------------------------------------------------

    public void Send(VhostUserRequest request, ReadOnlySpan<byte> payload, ReadOnlySpan<int> fds = default, uint flags = VhostUser.Version, int? sizeOverride = null)
    {
        byte[] message = new byte[VhostUser.HeaderSize + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)request);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(8), (uint)(sizeOverride ?? payload.Length));
        payload.CopyTo(message.AsSpan(VhostUser.HeaderSize));
        SendRaw(message, fds);
    }

    public void SendRaw(ReadOnlySpan<byte> bytes, ReadOnlySpan<int> fds = default)
    {
        int controlLength = fds.Length > 0 ? Native.CmsgSpace(fds.Length * sizeof(int)) : 0;
        byte* control = stackalloc byte[Math.Max(controlLength, 1)];
        fixed (byte* p = bytes)
        {
            Native.IoVec iov = new() { Base = p, Length = (nuint)bytes.Length };
            Native.MsgHdr msg = new() { Iov = &iov, IovLength = 1 };
            if (fds.Length > 0)
            {
                new Span<byte>(control, controlLength).Clear();
                Native.CmsgHdr* c = (Native.CmsgHdr*)control;
                c->Length = (nuint)Native.CmsgLen(fds.Length * sizeof(int));
                c->Level = Native.SOL_SOCKET;
                c->Type = Native.SCM_RIGHTS;
                fds.CopyTo(new Span<int>(control + sizeof(Native.CmsgHdr), fds.Length));
                msg.Control = control;
                msg.ControlLength = (nuint)controlLength;
            }
            nint n = Native.SendMsg(_socket, &msg, Native.MSG_NOSIGNAL);
            if (n != bytes.Length)
            {
                throw new IOException($"sendmsg: {Native.Describe(Native.LastError)}");
            }
        }
    }

    /// <summary>Reads one reply; null if the back-end closed the connection (or nothing came within the timeout).</summary>
    public byte[]? ReadReply(VhostUserRequest expected, int timeoutMs = 5000)
    {
        Native.PollFd pfd = new() { Fd = _socket, Events = Native.POLLIN };
        if (Native.Poll(&pfd, 1, timeoutMs) <= 0)
        {
            return null;
        }
        byte[] header = new byte[VhostUser.HeaderSize];
        if (!RecvAll(header))
        {
            return null;
        }
        Assert.Equal((uint)expected, BinaryPrimitives.ReadUInt32LittleEndian(header));
        Assert.Equal(VhostUser.Version | VhostUser.ReplyFlag, BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4)));
        byte[] payload = new byte[BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8))];
        Assert.True(RecvAll(payload));
        return payload;
    }

    private bool RecvAll(byte[] buffer)
    {
        fixed (byte* p = buffer)
        {
            int done = 0;
            while (done < buffer.Length)
            {
                nint n = Native.Recv(_socket, p + done, (nuint)(buffer.Length - done), 0);
                if (n <= 0)
                {
                    return false;
                }
                done += (int)n;
            }
        }
        return true;
    }

    /// <summary>True once the back-end has closed its end of the socket.</summary>
    public bool IsClosedByPeer(int timeoutMs = 5000)
    {
        Native.PollFd pfd = new() { Fd = _socket, Events = Native.POLLIN };
        if (Native.Poll(&pfd, 1, timeoutMs) <= 0)
        {
            return false;
        }
        byte b;
        return Native.Recv(_socket, &b, 1, 0) == 0;
    }

    public ulong GetU64(VhostUserRequest request)
    {
        Send(request, []);
        byte[] reply = ReadReply(request) ?? throw new IOException($"no reply to {request}");
        Assert.Equal(8, reply.Length);
        return BinaryPrimitives.ReadUInt64LittleEndian(reply);
    }

    public void SetU64(VhostUserRequest request, ulong value, ReadOnlySpan<int> fds = default) =>
        Send(request, U64(value), fds);

    /// <summary>Sends with NEED_REPLY and returns the ack value (0 = success), or null if the connection closed.</summary>
    public ulong? WithAck(VhostUserRequest request, ReadOnlySpan<byte> payload, ReadOnlySpan<int> fds = default)
    {
        Send(request, payload, fds, VhostUser.Version | VhostUser.NeedReplyFlag);
        byte[]? reply = ReadReply(request);
        return reply is null ? null : BinaryPrimitives.ReadUInt64LittleEndian(reply);
    }

    public static byte[] U64(ulong value)
    {
        byte[] b = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        return b;
    }

    public static byte[] State(uint index, uint num)
    {
        byte[] b = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(b, index);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), num);
        return b;
    }

    public byte[] MemTablePayload(ulong region1Size = RegionSize)
    {
        byte[] b = new byte[8 + 2 * 32];
        BinaryPrimitives.WriteUInt32LittleEndian(b, 2);
        WriteRegion(b.AsSpan(8), Region0Gpa, RegionSize, UserBase, 0);
        WriteRegion(b.AsSpan(40), Region1Gpa, region1Size, UserBase + RegionSize, RegionSize);
        return b;
    }

    public static void WriteRegion(Span<byte> b, ulong gpa, ulong size, ulong uva, ulong offset)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(b, gpa);
        BinaryPrimitives.WriteUInt64LittleEndian(b[8..], size);
        BinaryPrimitives.WriteUInt64LittleEndian(b[16..], uva);
        BinaryPrimitives.WriteUInt64LittleEndian(b[24..], offset);
    }

    /// <summary>Reads one reply and the fd that came with it (-1 if none).</summary>
    public byte[]? ReadReplyWithFd(VhostUserRequest expected, out int fd)
    {
        fd = -1;
        byte[] header = new byte[VhostUser.HeaderSize];
        int controlLength = Native.CmsgSpace(sizeof(int));
        byte* control = stackalloc byte[controlLength];
        fixed (byte* p = header)
        {
            Native.IoVec iov = new() { Base = p, Length = (nuint)header.Length };
            Native.MsgHdr msg = new() { Iov = &iov, IovLength = 1, Control = control, ControlLength = (nuint)controlLength };
            if (Native.RecvMsg(_socket, &msg, Native.MSG_CMSG_CLOEXEC) != header.Length)
            {
                return null;
            }
            if (msg.ControlLength >= (nuint)sizeof(Native.CmsgHdr) && ((Native.CmsgHdr*)control)->Type == Native.SCM_RIGHTS)
            {
                fd = *(int*)(control + sizeof(Native.CmsgHdr));
            }
        }
        Assert.Equal((uint)expected, BinaryPrimitives.ReadUInt32LittleEndian(header));
        byte[] payload = new byte[BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8))];
        Assert.True(RecvAll(payload));
        return payload;
    }

    public static byte[] Inflight(ulong size, ushort queues, ushort queueSize)
    {
        byte[] b = new byte[24];
        BinaryPrimitives.WriteUInt64LittleEndian(b, size);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(16), queues);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(18), queueSize);
        return b;
    }

    public ulong? SetMemTable(ulong region1Size = RegionSize) =>
        WithAck(VhostUserRequest.SetMemTable, MemTablePayload(region1Size), [_memfd, _memfd]);

    /// <summary>The whole set-up QEMU does, with every ring started and enabled.</summary>
    /// <summary>The in-flight area (INFLIGHT_SHMFD) to hand to the back-end during Negotiate, if any.</summary>
    public int InflightFd = -1;
    public ulong InflightSize;

    /// <summary>The base SET_VRING_BASE sends when the ring is kept (default: the used index now).</summary>
    public ushort? VringBase;

    public void Negotiate(bool indirect = true, bool eventIdx = false)
    {
        ulong features = GetU64(VhostUserRequest.GetFeatures);
        Assert.NotEqual(0UL, features & 1UL << VhostUser.FProtocolFeatures);
        ulong protocol = GetU64(VhostUserRequest.GetProtocolFeatures);
        SetU64(VhostUserRequest.SetProtocolFeatures, protocol & (1UL << VhostUser.ProtocolFMq | 1UL << VhostUser.ProtocolFReplyAck | 1UL << VhostUser.ProtocolFConfig
            | (InflightFd >= 0 ? 1UL << VhostUser.ProtocolFInflightShmfd : 0)));
        Assert.True(GetU64(VhostUserRequest.GetQueueNum) >= (ulong)_queues.Length);
        Send(VhostUserRequest.SetOwner, []);
        ulong wanted = features;
        if (!indirect)
        {
            wanted &= ~(1UL << Virtio.FRingIndirectDesc);
        }
        if (!eventIdx)
        {
            wanted &= ~(1UL << Virtio.FRingEventIdx);
        }
        Assert.Equal(0UL, WithAck(VhostUserRequest.SetFeatures, U64(wanted)));
        Assert.Equal(0UL, SetMemTable());
        if (InflightFd >= 0)
        {
            Assert.Equal(0UL, WithAck(VhostUserRequest.SetInflightFd, Inflight(InflightSize, (ushort)_queues.Length, QueueSize), [InflightFd]));
        }
        for (int i = 0; i < _queues.Length; i++)
        {
            StartQueue(i, keepRing: InflightFd >= 0);
        }
    }

    public void StartQueue(int i, bool enable = true, bool keepRing = false)
    {
        Queue q = _queues[i];
        if (!keepRing)
        {
            new Span<byte>(Host(RingGpa(i)), 0x4000).Clear();
            q.AvailIdx = 0;
            q.UsedSeen = 0;
            q.NextDesc = 0;
        }
        Assert.Equal(0UL, WithAck(VhostUserRequest.SetVringNum, State((uint)i, QueueSize)));
        // Like QEMU after a back-end crash: the base is the used index (as QEMU last saw it: VringBase).
        Assert.Equal(0UL, WithAck(VhostUserRequest.SetVringBase, State((uint)i, keepRing ? VringBase ?? UsedIdx(i) : 0u)));
        byte[] addr = new byte[40];
        BinaryPrimitives.WriteUInt32LittleEndian(addr, (uint)i);
        BinaryPrimitives.WriteUInt64LittleEndian(addr.AsSpan(8), UserBase + DescGpa(i));
        BinaryPrimitives.WriteUInt64LittleEndian(addr.AsSpan(16), UserBase + UsedGpa(i));
        BinaryPrimitives.WriteUInt64LittleEndian(addr.AsSpan(24), UserBase + AvailGpa(i));
        Assert.Equal(0UL, WithAck(VhostUserRequest.SetVringAddr, addr));
        Native.CloseQuietly(ref q.KickFd);
        Native.CloseQuietly(ref q.CallFd);
        Native.CloseQuietly(ref q.ErrFd);
        q.KickFd = Native.EventFd(0, Native.EFD_CLOEXEC | Native.EFD_NONBLOCK);
        q.CallFd = Native.EventFd(0, Native.EFD_CLOEXEC | Native.EFD_NONBLOCK);
        q.ErrFd = Native.EventFd(0, Native.EFD_CLOEXEC | Native.EFD_NONBLOCK);
        Assert.Equal(0UL, WithAck(VhostUserRequest.SetVringCall, U64((ulong)i), [q.CallFd]));
        Assert.Equal(0UL, WithAck(VhostUserRequest.SetVringErr, U64((ulong)i), [q.ErrFd]));
        Assert.Equal(0UL, WithAck(VhostUserRequest.SetVringKick, U64((ulong)i), [q.KickFd]));
        if (enable)
        {
            Assert.Equal(0UL, WithAck(VhostUserRequest.SetVringEnable, State((uint)i, 1)));
        }
    }

    /// <summary>GET_VRING_BASE: stops the ring; returns the back-end's last available index.</summary>
    public uint StopQueue(int i)
    {
        Send(VhostUserRequest.GetVringBase, State((uint)i, 0));
        byte[] reply = ReadReply(VhostUserRequest.GetVringBase) ?? throw new IOException("no reply to GET_VRING_BASE");
        Assert.Equal((uint)i, BinaryPrimitives.ReadUInt32LittleEndian(reply));
        return BinaryPrimitives.ReadUInt32LittleEndian(reply.AsSpan(4));
    }

    // Rings ----------------------------------------------------------------------------------------

    /// <summary>Writes descriptor idx of a queue's table (or of any table at tableGpa).</summary>
    public void WriteDesc(ulong tableGpa, int idx, ulong addr, uint len, ushort flags, ushort next)
    {
        byte* d = Host(tableGpa) + idx * 16;
        *(ulong*)d = addr;
        *(uint*)(d + 8) = len;
        *(ushort*)(d + 12) = flags;
        *(ushort*)(d + 14) = next;
    }

    /// <summary>A chain description: (gpa, len, writable) per buffer.</summary>
    public readonly record struct Buf(ulong Gpa, uint Len, bool Writable);

    /// <summary>Writes a direct chain into the queue's table and returns its head.</summary>
    public ushort AddChain(int queue, params Buf[] bufs)
    {
        Queue q = _queues[queue];
        ushort head = (ushort)(q.NextDesc % QueueSize);
        for (int i = 0; i < bufs.Length; i++)
        {
            int idx = (q.NextDesc + i) % QueueSize;
            ushort flags = (ushort)((bufs[i].Writable ? Virtio.DescFWrite : 0) | (i + 1 < bufs.Length ? Virtio.DescFNext : 0));
            WriteDesc(DescGpa(queue), idx, bufs[i].Gpa, bufs[i].Len, flags, (ushort)((idx + 1) % QueueSize));
        }
        q.NextDesc += bufs.Length;
        return head;
    }

    /// <summary>An indirect chain: one descriptor in the ring pointing at a table at tableGpa.</summary>
    public ushort AddIndirectChain(int queue, ulong tableGpa, params Buf[] bufs)
    {
        for (int i = 0; i < bufs.Length; i++)
        {
            ushort flags = (ushort)((bufs[i].Writable ? Virtio.DescFWrite : 0) | (i + 1 < bufs.Length ? Virtio.DescFNext : 0));
            WriteDesc(tableGpa, i, bufs[i].Gpa, bufs[i].Len, flags, (ushort)(i + 1));
        }
        Queue q = _queues[queue];
        ushort head = (ushort)(q.NextDesc % QueueSize);
        WriteDesc(DescGpa(queue), head, tableGpa, (uint)(bufs.Length * 16), Virtio.DescFIndirect, 0);
        q.NextDesc++;
        return head;
    }

    /// <summary>Puts heads on the available ring and publishes the new index (no kick).</summary>
    public void Publish(int queue, ushort[] heads)
    {
        Queue q = _queues[queue];
        byte* avail = Host(AvailGpa(queue));
        foreach (ushort head in heads)
        {
            *(ushort*)(avail + 4 + 2 * (q.AvailIdx % QueueSize)) = head;
            q.AvailIdx++;
        }
        Volatile.Write(ref *(ushort*)(avail + 2), q.AvailIdx);
    }

    public void Publish(int queue, ushort head)
    {
        Queue q = _queues[queue];
        byte* avail = Host(AvailGpa(queue));
        *(ushort*)(avail + 4 + 2 * (q.AvailIdx % QueueSize)) = head;
        q.AvailIdx++;
        Volatile.Write(ref *(ushort*)(avail + 2), q.AvailIdx);
    }

    /// <summary>EVENT_IDX: the driver's used_event (interrupt when the used index passes it).</summary>
    public void SetUsedEvent(int queue, ushort value) => Volatile.Write(ref *(ushort*)(Host(AvailGpa(queue)) + 4 + 2 * QueueSize), value);

    /// <summary>EVENT_IDX: the device's avail_event (kick it when the available index passes it).</summary>
    public ushort AvailEvent(int queue) => Volatile.Read(ref *(ushort*)(Host(UsedGpa(queue)) + 4 + 8 * QueueSize));

    /// <summary>Whether the call eventfd was signalled (and clears it).</summary>
    public bool CallSignalled(int queue, int timeoutMs)
    {
        Native.PollFd pfd = new() { Fd = _queues[queue].CallFd, Events = Native.POLLIN };
        if (Native.Poll(&pfd, 1, timeoutMs) <= 0)
        {
            return false;
        }
        Native.Drain(_queues[queue].CallFd);
        return true;
    }

    /// <summary>Writes the available index without adding entries (a lying driver).</summary>
    public void SetAvailIdxRaw(int queue, ushort value) => Volatile.Write(ref *(ushort*)(Host(AvailGpa(queue)) + 2), value);

    public void Kick(int queue) => Native.Signal(_queues[queue].KickFd);

    public ushort UsedIdx(int queue) => Volatile.Read(ref *(ushort*)(Host(UsedGpa(queue)) + 2));

    /// <summary>Used element n (id, len) of a queue.</summary>
    public (uint Id, uint Len) UsedElement(int queue, int n)
    {
        byte* e = Host(UsedGpa(queue)) + 4 + 8 * (n % QueueSize);
        return (*(uint*)e, *(uint*)(e + 4));
    }

    /// <summary>Waits until the used index reaches target, sleeping on the call eventfd.</summary>
    public bool WaitUsed(int queue, ushort target, int timeoutMs = 5000)
    {
        Queue q = _queues[queue];
        long deadline = Environment.TickCount64 + timeoutMs;
        while ((short)(UsedIdx(queue) - target) < 0)
        {
            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                return false;
            }
            Native.PollFd pfd = new() { Fd = q.CallFd, Events = Native.POLLIN };
            if (Native.Poll(&pfd, 1, (int)Math.Min(left, 50)) > 0)
            {
                Native.Drain(q.CallFd);
            }
        }
        return true;
    }

    public bool ErrSignalled(int queue, int timeoutMs = 2000)
    {
        Native.PollFd pfd = new() { Fd = _queues[queue].ErrFd, Events = Native.POLLIN };
        return Native.Poll(&pfd, 1, timeoutMs) > 0;
    }

    public void Dispose()
    {
        foreach (Queue q in _queues)
        {
            Native.CloseQuietly(ref q.KickFd);
            Native.CloseQuietly(ref q.CallFd);
            Native.CloseQuietly(ref q.ErrFd);
        }
        Native.CloseQuietly(ref _socket);
        Native.Munmap((nint)_memory, (nuint)(2 * RegionSize));
        Native.CloseQuietly(ref _memfd);
    }
}
