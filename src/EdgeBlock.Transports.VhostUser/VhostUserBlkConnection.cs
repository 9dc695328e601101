using System.Buffers.Binary;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Transports.VhostUser;

/// <summary>
/// One front-end (QEMU) session on an accepted socket: reads vhost-user messages (with the
/// file descriptors they carry, via recvmsg and SCM_RIGHTS), keeps the negotiated state, the
/// memory table and the virtqueues, and answers. Runs on the server's accept thread until the
/// peer disconnects or breaks the protocol; then everything is torn down (queues drained,
/// fds closed, memory unmapped) and the server accepts the next connection.
/// </summary>
internal sealed unsafe class VhostUserBlkConnection : IDisposable
{
    private const ulong BaseProtocolFeatures =
        1UL << VhostUser.ProtocolFMq | 1UL << VhostUser.ProtocolFReplyAck | 1UL << VhostUser.ProtocolFConfig;

    private readonly BlkDeviceContext _ctx;
    private readonly ILogger _logger;
    private readonly VirtQueue?[] _queues;
    private readonly byte[] _payload = new byte[VhostUser.MaxPayload];
    private readonly int[] _fds = new int[VhostUser.MaxFds];
    private readonly byte[] _config = new byte[VirtioBlkConfig.Size];
    private readonly ulong _offeredFeatures;
    private readonly ulong _offeredProtocolFeatures;
    private readonly DrainDeadline _drainDeadline = new();
    private nint _inflightArea;
    private nuint _inflightLength;
    private int _fdCount;
    private int _socket;
    private ulong _features;
    private ulong _protocolFeatures;
    private GuestMemory _memory = GuestMemory.Empty;

    public VhostUserBlkConnection(int socket, BlkDeviceContext ctx)
    {
        _socket = socket;
        _ctx = ctx;
        _logger = ctx.Logger;
        _queues = new VirtQueue?[ctx.Options.MaxQueues];
        _offeredFeatures = VirtioBlkConfig.Features(ctx);
        _offeredProtocolFeatures = BaseProtocolFeatures | (ctx.Options.InflightTracking ? 1UL << VhostUser.ProtocolFInflightShmfd : 0);
        VirtioBlkConfig.Write(ctx, _config);
        Array.Fill(_fds, -1);
    }

    public int Socket => _socket;

    /// <summary>Queues created so far (for tests and statistics).</summary>
    public IReadOnlyList<VirtQueue?> Queues => _queues;

    public GuestMemory Memory => _memory;

    /// <summary>Serves messages until the peer goes away. Returns the reason the session ended.</summary>
    public string Run()
    {
        try
        {
            while (true)
            {
                if (!ReadMessage(out uint request, out uint flags, out int size))
                {
                    return "the front-end closed the connection";
                }
                try
                {
                    Dispatch((VhostUserRequest)request, flags, size);
                }
                finally
                {
                    CloseUntakenFds();
                }
            }
        }
        catch (VhostUserProtocolException e)
        {
            _logger.LogError("vhost-user-blk: closing the connection: {Reason}", e.Message);
            return e.Message;
        }
    }

    // Messages -----------------------------------------------------------------------------------

    private void Dispatch(VhostUserRequest request, uint flags, int size)
    {
        ReadOnlySpan<byte> payload = _payload.AsSpan(0, size);
        bool needReply = (flags & VhostUser.NeedReplyFlag) != 0;
        bool ok = true;
        switch (request)
        {
            case VhostUserRequest.GetFeatures:
                ReplyU64(request, _offeredFeatures);
                return;
            case VhostUserRequest.SetFeatures:
                ok = SetFeatures(U64(payload, request));
                break;
            case VhostUserRequest.GetProtocolFeatures:
                ReplyU64(request, _offeredProtocolFeatures);
                return;
            case VhostUserRequest.SetProtocolFeatures:
            {
                ulong wanted = U64(payload, request);
                if ((wanted & ~_offeredProtocolFeatures) != 0)
                {
                    _logger.LogWarning("vhost-user-blk: the front-end asks for protocol features 0x{Features:x} that were not offered; ignoring them", wanted & ~_offeredProtocolFeatures);
                }
                _protocolFeatures = wanted & _offeredProtocolFeatures;
                break;
            }
            case VhostUserRequest.SetOwner:
                break;
            case VhostUserRequest.ResetOwner:
            case VhostUserRequest.ResetDevice:
                foreach (VirtQueue? q in _queues)
                {
                    if (q is not null)
                    {
                        StopQueue(q);
                        q.SetEnabled(false);
                    }
                }
                break;
            case VhostUserRequest.GetQueueNum:
                ReplyU64(request, (ulong)_queues.Length);
                return;
            case VhostUserRequest.SetMemTable:
                ok = SetMemTable(payload);
                break;
            case VhostUserRequest.SetVringNum:
            {
                (VirtQueue q, uint num) = State(payload, request);
                if (q.Running || num == 0 || num > (uint)_ctx.Options.MaxQueueSize || (num & (num - 1)) != 0)
                {
                    _logger.LogError("vhost-user-blk queue {Queue}: refusing a size of {Size} (a power of two up to {Max}, while the ring is stopped)", q.Index, num, _ctx.Options.MaxQueueSize);
                    ok = false;
                }
                else
                {
                    q.Configure(q.Config with { Size = (int)num });
                }
                break;
            }
            case VhostUserRequest.SetVringAddr:
                ok = SetVringAddr(payload);
                break;
            case VhostUserRequest.SetVringBase:
            {
                (VirtQueue q, uint num) = State(payload, request);
                if (q.Running)
                {
                    _logger.LogError("vhost-user-blk queue {Queue}: SET_VRING_BASE while the ring runs", q.Index);
                    ok = false;
                }
                else
                {
                    q.SetBase((ushort)num);
                }
                break;
            }
            case VhostUserRequest.GetVringBase:
            {
                (VirtQueue q, _) = State(payload, request);
                StopQueue(q);
                q.SetKickFd(-1);
                q.SetCallFd(-1);
                Span<byte> reply = stackalloc byte[8];
                BinaryPrimitives.WriteUInt32LittleEndian(reply, (uint)q.Index);
                BinaryPrimitives.WriteUInt32LittleEndian(reply[4..], q.LastAvail);
                Reply(request, reply);
                return;
            }
            case VhostUserRequest.SetVringKick:
                ok = SetVringKick(payload);
                break;
            case VhostUserRequest.SetVringCall:
            {
                (VirtQueue q, int fd) = VringFd(payload, request);
                q.SetCallFd(fd);
                break;
            }
            case VhostUserRequest.SetVringErr:
            {
                (VirtQueue q, int fd) = VringFd(payload, request);
                q.SetErrFd(fd);
                break;
            }
            case VhostUserRequest.SetVringEnable:
            {
                (VirtQueue q, uint num) = State(payload, request);
                if (num > 1)
                {
                    ok = false;
                }
                else
                {
                    q.SetEnabled(num == 1);
                }
                break;
            }
            case VhostUserRequest.GetConfig:
                GetConfig(payload, request);
                return;
            case VhostUserRequest.GetInflightFd when (_protocolFeatures & 1UL << VhostUser.ProtocolFInflightShmfd) != 0:
                GetInflightFd(payload, request);
                return;
            case VhostUserRequest.SetInflightFd when (_protocolFeatures & 1UL << VhostUser.ProtocolFInflightShmfd) != 0:
                ok = SetInflightFd(payload);
                break;
            case VhostUserRequest.SetConfig:
                // No writable field is offered (no CONFIG_WCE): refuse quietly.
                ok = false;
                break;
            default:
                _logger.LogWarning("vhost-user-blk: unsupported request {Request} ({Size} bytes, {Fds} fds) ignored", (uint)request, size, _fdCount);
                if (request is VhostUserRequest.GetInflightFd or VhostUserRequest.GetStatus or VhostUserRequest.GetMaxMemSlots or VhostUserRequest.IotlbMsg)
                {
                    // The front-end waits for an answer we cannot give.
                    throw new VhostUserProtocolException($"request {(uint)request} needs a reply and is not supported");
                }
                ok = false;
                break;
        }
        if (needReply)
        {
            ReplyU64(request, ok ? 0UL : 1UL);
        }
    }

    private bool SetFeatures(ulong features)
    {
        if ((features & ~_offeredFeatures) != 0)
        {
            _logger.LogError("vhost-user-blk: the front-end sets features 0x{Features:x} that were not offered", features & ~_offeredFeatures);
            return false;
        }
        if (features != _features)
        {
            _logger.LogInformation("vhost-user-blk: features 0x{Features:x} negotiated (indirect {Indirect}, event index {EventIdx}, protocol features 0x{Protocol:x})",
                features, (features & 1UL << Virtio.FRingIndirectDesc) != 0, (features & 1UL << Virtio.FRingEventIdx) != 0, _protocolFeatures);
        }
        _features = features;
        foreach (VirtQueue? q in _queues)
        {
            q?.ApplyFeatures(features);
        }
        if ((features & 1UL << VhostUser.FProtocolFeatures) == 0)
        {
            // Without VHOST_USER_F_PROTOCOL_FEATURES rings are enabled as soon as they start.
            for (int i = 0; i < _queues.Length; i++)
            {
                Queue(i).SetEnabled(true);
            }
        }
        return true;
    }

    private bool SetMemTable(ReadOnlySpan<byte> payload)
    {
        Span<int> fds = stackalloc int[_fdCount];
        for (int i = 0; i < _fdCount; i++)
        {
            fds[i] = _fds[i];
            _fds[i] = -1;
        }
        _fdCount = 0;
        GuestMemory? memory = GuestMemory.Map(payload, fds, out string? error);
        if (memory is null)
        {
            _logger.LogError("vhost-user-blk: SET_MEM_TABLE refused: {Reason}", error);
            return false;
        }
        // Rings in use keep running on the new table once their requests have drained.
        var restart = new List<VirtQueue>();
        try
        {
            foreach (VirtQueue? q in _queues)
            {
                if (q is { Running: true })
                {
                    StopQueue(q);
                    restart.Add(q);
                }
            }
        }
        catch (VhostUserProtocolException)
        {
            memory.Dispose();
            throw;
        }
        GuestMemory old = _memory;
        _memory = memory;
        old.Dispose();
        _logger.LogInformation("vhost-user-blk: guest memory mapped: {Count} regions, {MiB} MiB", memory.RegionCount, memory.TotalSize >> 20);
        if (memory.Shrinkable)
        {
            _logger.LogWarning("vhost-user-blk: the guest memory files are not sealed against shrinking (F_SEAL_SHRINK); a front-end that truncates them would crash this process. QEMU seals memfd backends unless seal=off.");
        }
        foreach (VirtQueue q in restart)
        {
            if (!q.TryStart(_memory, out string? startError))
            {
                _logger.LogError("vhost-user-blk: {Reason}", startError);
            }
        }
        return true;
    }

    private bool SetVringAddr(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 40)
        {
            throw new VhostUserProtocolException($"SET_VRING_ADDR with a payload of {payload.Length} bytes");
        }
        VirtQueue q = Queue(BinaryPrimitives.ReadUInt32LittleEndian(payload), VhostUserRequest.SetVringAddr);
        if (q.Running)
        {
            _logger.LogError("vhost-user-blk queue {Queue}: SET_VRING_ADDR while the ring runs", q.Index);
            return false;
        }
        // struct vhost_vring_addr: index, flags, then desc, used, avail (in that order), log.
        VirtqConfig config = q.Config with
        {
            DescUserAddress = BinaryPrimitives.ReadUInt64LittleEndian(payload[8..]),
            UsedUserAddress = BinaryPrimitives.ReadUInt64LittleEndian(payload[16..]),
            AvailUserAddress = BinaryPrimitives.ReadUInt64LittleEndian(payload[24..]),
            AddressesSet = true,
        };
        if (config.Size > 0 && _memory.RegionCount > 0 && !SplitRing.Fits(_memory, config))
        {
            _logger.LogError("vhost-user-blk queue {Queue}: ring addresses are not inside the shared memory", q.Index);
            q.Configure(config with { AddressesSet = false });
            return false;
        }
        q.Configure(config);
        return true;
    }

    private bool SetVringKick(ReadOnlySpan<byte> payload)
    {
        (VirtQueue q, int fd) = VringFd(payload, VhostUserRequest.SetVringKick);
        StopQueue(q);
        q.SetKickFd(fd);
        q.ApplyFeatures(_features);
        if (fd < 0)
        {
            _logger.LogError("vhost-user-blk queue {Queue}: SET_VRING_KICK without an eventfd (polling) is not supported", q.Index);
            return false;
        }
        if (!q.TryStart(_memory, out string? error))
        {
            _logger.LogError("vhost-user-blk: {Reason}", error);
            return false;
        }
        _logger.LogDebug("vhost-user-blk queue {Queue}: started, {Size} entries, enabled {Enabled}", q.Index, q.Config.Size, q.Enabled);
        return true;
    }

    private static bool ParseInflight(ReadOnlySpan<byte> payload, out ulong size, out ulong offset, out int queues, out int queueSize)
    {
        size = offset = 0;
        queues = queueSize = 0;
        if (payload.Length < 20)
        {
            return false;
        }
        size = BinaryPrimitives.ReadUInt64LittleEndian(payload);
        offset = BinaryPrimitives.ReadUInt64LittleEndian(payload[8..]);
        queues = BinaryPrimitives.ReadUInt16LittleEndian(payload[16..]);
        queueSize = BinaryPrimitives.ReadUInt16LittleEndian(payload[18..]);
        return true;
    }

    /// <summary>GET_INFLIGHT_FD: a fresh, initialized tracking area in a memfd, passed to the front-end to keep.</summary>
    private void GetInflightFd(ReadOnlySpan<byte> payload, VhostUserRequest request)
    {
        if (!ParseInflight(payload, out _, out _, out int queues, out int queueSize))
        {
            throw new VhostUserProtocolException($"GET_INFLIGHT_FD with a payload of {payload.Length} bytes");
        }
        Span<byte> reply = stackalloc byte[Math.Max(payload.Length, 24)];
        reply.Clear();
        if (queues < 1 || queues > _queues.Length || queueSize < 1 || queueSize > _ctx.Options.MaxQueueSize || (queueSize & (queueSize - 1)) != 0)
        {
            _logger.LogError("vhost-user-blk: GET_INFLIGHT_FD for {Queues} queues of {Size} entries refused", queues, queueSize);
            Reply(request, reply); // mmap_size 0: no tracking
            return;
        }
        long regionSize = InflightTracking.QueueRegionSize(queueSize);
        long total = regionSize * queues;
        int fd;
        byte* name = stackalloc byte[] { (byte)'i', (byte)'n', (byte)'f', (byte)'l', (byte)'i', (byte)'g', (byte)'h', (byte)'t', 0 };
        fd = Native.MemfdCreate(name, Native.MFD_CLOEXEC);
        nint map = Native.MAP_FAILED;
        if (fd >= 0 && Native.Ftruncate(fd, total) == 0)
        {
            map = Native.Mmap(0, (nuint)total, Native.PROT_READ | Native.PROT_WRITE, Native.MAP_SHARED, fd, 0);
        }
        if (map == Native.MAP_FAILED)
        {
            _logger.LogError("vhost-user-blk: cannot create the in-flight area: {Error}", Native.Describe(Native.LastError));
            Native.CloseQuietly(ref fd);
            Reply(request, reply);
            return;
        }
        for (int q = 0; q < queues; q++)
        {
            InflightTracking.Initialize(map + (nint)(q * regionSize), queueSize);
        }
        Native.Munmap(map, (nuint)total);
        BinaryPrimitives.WriteUInt64LittleEndian(reply, (ulong)total);
        BinaryPrimitives.WriteUInt16LittleEndian(reply[16..], (ushort)queues);
        BinaryPrimitives.WriteUInt16LittleEndian(reply[18..], (ushort)queueSize);
        try
        {
            Reply(request, reply, fd);
        }
        finally
        {
            Native.CloseQuietly(ref fd);
        }
    }

    /// <summary>SET_INFLIGHT_FD: map the tracking area (new, or kept by QEMU from a previous back-end).</summary>
    private bool SetInflightFd(ReadOnlySpan<byte> payload)
    {
        if (!ParseInflight(payload, out ulong size, out ulong offset, out int queues, out int queueSize) || _fdCount != 1)
        {
            throw new VhostUserProtocolException($"SET_INFLIGHT_FD with {payload.Length} bytes and {_fdCount} fds");
        }
        int fd = _fds[0];
        _fds[0] = -1;
        _fdCount = 0;
        try
        {
            long regionSize = InflightTracking.QueueRegionSize(queueSize);
            if (queues < 1 || queues > _queues.Length || queueSize < 1 || queueSize > _ctx.Options.MaxQueueSize ||
                size < (ulong)(regionSize * queues) || size > 1UL << 30 || offset > 1UL << 40 || (offset & 4095) != 0)
            {
                _logger.LogError("vhost-user-blk: SET_INFLIGHT_FD of {Size} bytes for {Queues} queues of {QueueSize} refused", size, queues, queueSize);
                return false;
            }
            long fileSize = Native.FileSize(fd);
            if (fileSize < 0 || (ulong)fileSize < offset + size)
            {
                _logger.LogError("vhost-user-blk: SET_INFLIGHT_FD: the file holds {FileSize} bytes, {Needed} needed", fileSize, offset + size);
                return false;
            }
            foreach (VirtQueue? q in _queues)
            {
                if (q is { Running: true })
                {
                    _logger.LogError("vhost-user-blk: SET_INFLIGHT_FD while queue {Queue} runs", q.Index);
                    return false;
                }
            }
            nint map = Native.Mmap(0, (nuint)size, Native.PROT_READ | Native.PROT_WRITE, Native.MAP_SHARED, fd, (long)offset);
            if (map == Native.MAP_FAILED)
            {
                _logger.LogError("vhost-user-blk: SET_INFLIGHT_FD: mmap failed: {Error}", Native.Describe(Native.LastError));
                return false;
            }
            ReleaseInflightArea();
            _inflightArea = map;
            _inflightLength = (nuint)size;
            for (int i = 0; i < queues; i++)
            {
                Queue(i).SetInflightRegion(map + (nint)(i * regionSize), queueSize);
            }
            _logger.LogInformation("vhost-user-blk: in-flight area mapped ({Queues} queues of {Size} entries)", queues, queueSize);
            return true;
        }
        finally
        {
            Native.CloseQuietly(ref fd);
        }
    }

    private void ReleaseInflightArea()
    {
        foreach (VirtQueue? q in _queues)
        {
            q?.SetInflightRegion(0, 0);
        }
        if (_inflightArea != 0)
        {
            Native.Munmap(_inflightArea, _inflightLength);
            _inflightArea = 0;
        }
    }

    private void GetConfig(ReadOnlySpan<byte> payload, VhostUserRequest request)
    {
        if (payload.Length < 12)
        {
            throw new VhostUserProtocolException($"GET_CONFIG with a payload of {payload.Length} bytes");
        }
        uint offset = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]);
        if (size > VhostUser.MaxPayload - 12 || offset > 256 || size > 256 - offset)
        {
            _logger.LogError("vhost-user-blk: GET_CONFIG of {Size} bytes at {Offset} is out of range", size, offset);
            Reply(request, []); // a zero-length payload tells the front-end it failed
            return;
        }
        Span<byte> reply = stackalloc byte[12 + (int)size];
        reply.Clear();
        payload[..12].CopyTo(reply);
        if (offset < _config.Length)
        {
            int n = (int)Math.Min(size, (uint)_config.Length - offset);
            _config.AsSpan((int)offset, n).CopyTo(reply[12..]);
        }
        Reply(request, reply);
    }

    // Payload helpers ------------------------------------------------------------------------------

    private static ulong U64(ReadOnlySpan<byte> payload, VhostUserRequest request)
    {
        if (payload.Length < 8)
        {
            throw new VhostUserProtocolException($"{request} with a payload of {payload.Length} bytes (8 expected)");
        }
        return BinaryPrimitives.ReadUInt64LittleEndian(payload);
    }

    private (VirtQueue, uint) State(ReadOnlySpan<byte> payload, VhostUserRequest request)
    {
        if (payload.Length < 8)
        {
            throw new VhostUserProtocolException($"{request} with a payload of {payload.Length} bytes (8 expected)");
        }
        return (Queue(BinaryPrimitives.ReadUInt32LittleEndian(payload), request), BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]));
    }

    /// <summary>The ring and the fd of SET_VRING_KICK/CALL/ERR (the fd, if any, now belongs to the caller).</summary>
    private (VirtQueue, int) VringFd(ReadOnlySpan<byte> payload, VhostUserRequest request)
    {
        ulong value = U64(payload, request);
        VirtQueue q = Queue((uint)(value & VhostUser.VringIndexMask), request);
        bool noFd = (value & VhostUser.VringNoFdFlag) != 0;
        if (noFd != (_fdCount == 0) || _fdCount > 1)
        {
            throw new VhostUserProtocolException($"{request} for queue {q.Index} carries {_fdCount} fds with the no-fd flag {(noFd ? "set" : "clear")}");
        }
        int fd = -1;
        if (!noFd)
        {
            fd = _fds[0];
            _fds[0] = -1;
            _fdCount = 0;
        }
        return (q, fd);
    }

    private VirtQueue Queue(uint index, VhostUserRequest request)
    {
        if (index >= (uint)_queues.Length)
        {
            throw new VhostUserProtocolException($"{request} names queue {index}; this device has {_queues.Length}");
        }
        return Queue((int)index);
    }

    private VirtQueue Queue(int index)
    {
        VirtQueue? q = _queues[index];
        if (q is null)
        {
            q = new VirtQueue(index, _ctx, _drainDeadline);
            q.ApplyFeatures(_features);
            if ((_features & 1UL << VhostUser.FProtocolFeatures) == 0 && _features != 0)
            {
                q.SetEnabled(true);
            }
            _queues[index] = q;
        }
        return q;
    }

    // Socket I/O -----------------------------------------------------------------------------------

    private bool ReadMessage(out uint request, out uint flags, out int size)
    {
        byte* header = stackalloc byte[VhostUser.HeaderSize];
        int controlLength = Native.CmsgSpace(VhostUser.MaxFds * sizeof(int));
        byte* control = stackalloc byte[controlLength];
        request = flags = 0;
        size = 0;
        int got = 0;
        while (got < VhostUser.HeaderSize)
        {
            Native.IoVec iov = new() { Base = header + got, Length = (nuint)(VhostUser.HeaderSize - got) };
            Native.MsgHdr msg = new() { Iov = &iov, IovLength = 1, Control = control, ControlLength = (nuint)controlLength };
            nint n = Native.RecvMsg(_socket, &msg, Native.MSG_CMSG_CLOEXEC);
            if (n < 0)
            {
                int errno = Native.LastError;
                if (errno == Native.EINTR)
                {
                    continue;
                }
                if (got == 0)
                {
                    return false;
                }
                throw new VhostUserProtocolException($"recvmsg failed: {Native.Describe(errno)}");
            }
            CollectFds(&msg);
            if ((msg.Flags & Native.MSG_CTRUNC) != 0)
            {
                throw new VhostUserProtocolException("a message carried more file descriptors than any request may");
            }
            if (n == 0)
            {
                if (got == 0)
                {
                    return false;
                }
                throw new VhostUserProtocolException("the connection closed inside a message header");
            }
            got += (int)n;
        }
        request = *(uint*)header;
        flags = *(uint*)(header + 4);
        uint length = *(uint*)(header + 8);
        if ((flags & VhostUser.VersionMask) != VhostUser.Version)
        {
            throw new VhostUserProtocolException($"message {request} has version {flags & VhostUser.VersionMask}, not {VhostUser.Version}");
        }
        if (length > VhostUser.MaxPayload)
        {
            throw new VhostUserProtocolException($"message {request} announces a payload of {length} bytes (at most {VhostUser.MaxPayload})");
        }
        size = (int)length;
        fixed (byte* p = _payload)
        {
            int done = 0;
            while (done < size)
            {
                nint n = Native.Recv(_socket, p + done, (nuint)(size - done), 0);
                if (n < 0 && Native.LastError == Native.EINTR)
                {
                    continue;
                }
                if (n <= 0)
                {
                    throw new VhostUserProtocolException($"the connection ended inside the payload of message {request}");
                }
                done += (int)n;
            }
        }
        return true;
    }

    private void CollectFds(Native.MsgHdr* msg)
    {
        if (msg->ControlLength < (nuint)sizeof(Native.CmsgHdr))
        {
            return;
        }
        byte* p = (byte*)msg->Control;
        byte* end = p + msg->ControlLength;
        while (p + sizeof(Native.CmsgHdr) <= end)
        {
            Native.CmsgHdr* c = (Native.CmsgHdr*)p;
            if (c->Length < (nuint)sizeof(Native.CmsgHdr) || p + c->Length > end)
            {
                break;
            }
            if (c->Level == Native.SOL_SOCKET && c->Type == Native.SCM_RIGHTS)
            {
                int count = (int)((c->Length - (nuint)sizeof(Native.CmsgHdr)) / sizeof(int));
                int* fds = (int*)(p + sizeof(Native.CmsgHdr));
                for (int i = 0; i < count; i++)
                {
                    if (_fdCount < _fds.Length)
                    {
                        _fds[_fdCount++] = fds[i];
                    }
                    else
                    {
                        Native.Close(fds[i]);
                    }
                }
            }
            p += Native.CmsgAlign((int)c->Length);
        }
    }

    private void CloseUntakenFds()
    {
        for (int i = 0; i < _fds.Length; i++)
        {
            Native.CloseQuietly(ref _fds[i]);
        }
        _fdCount = 0;
    }

    private void ReplyU64(VhostUserRequest request, ulong value)
    {
        Span<byte> payload = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(payload, value);
        Reply(request, payload);
    }

    private void Reply(VhostUserRequest request, ReadOnlySpan<byte> payload, int fd = -1)
    {
        Span<byte> message = stackalloc byte[VhostUser.HeaderSize + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)request);
        BinaryPrimitives.WriteUInt32LittleEndian(message[4..], VhostUser.Version | VhostUser.ReplyFlag);
        BinaryPrimitives.WriteUInt32LittleEndian(message[8..], (uint)payload.Length);
        payload.CopyTo(message[VhostUser.HeaderSize..]);
        fixed (byte* p = message)
        {
            int done = 0;
            if (fd >= 0)
            {
                // The whole message with the fd attached in one sendmsg.
                int controlLength = Native.CmsgSpace(sizeof(int));
                byte* control = stackalloc byte[controlLength];
                new Span<byte>(control, controlLength).Clear();
                Native.CmsgHdr* c = (Native.CmsgHdr*)control;
                c->Length = (nuint)Native.CmsgLen(sizeof(int));
                c->Level = Native.SOL_SOCKET;
                c->Type = Native.SCM_RIGHTS;
                *(int*)(control + sizeof(Native.CmsgHdr)) = fd;
                Native.IoVec iov = new() { Base = p, Length = (nuint)message.Length };
                Native.MsgHdr msg = new() { Iov = &iov, IovLength = 1, Control = control, ControlLength = (nuint)controlLength };
                nint sent;
                while ((sent = Native.SendMsg(_socket, &msg, Native.MSG_NOSIGNAL)) < 0 && Native.LastError == Native.EINTR)
                {
                }
                if (sent <= 0)
                {
                    throw new VhostUserProtocolException($"sending the reply to {request} failed: {Native.Describe(Native.LastError)}");
                }
                done = (int)sent;
            }
            while (done < message.Length)
            {
                nint n = Native.Send(_socket, p + done, (nuint)(message.Length - done), Native.MSG_NOSIGNAL);
                if (n < 0 && Native.LastError == Native.EINTR)
                {
                    continue;
                }
                if (n <= 0)
                {
                    throw new VhostUserProtocolException($"sending the reply to {request} failed: {Native.Describe(Native.LastError)}");
                }
                done += (int)n;
            }
        }
    }

    /// <summary>What this session's queues did (each queue counts its own; read without stopping them).</summary>
    public VhostUserBlkStatistics Statistics()
    {
        var total = default(VhostUserBlkStatistics);
        foreach (VirtQueue? q in _queues)
        {
            if (q is not null)
            {
                total += new VhostUserBlkStatistics(q.Completed, q.Failed, q.BytesRead, q.BytesWritten);
            }
        }
        return total;
    }

    /// <summary>
    /// A ring stop the front-end asked for; when teardown's deadline ends the wait first, the session
    /// ends instead of going on (and unmapping memory) with requests still in the device.
    /// </summary>
    private void StopQueue(VirtQueue q)
    {
        if (!q.Stop())
        {
            throw new VhostUserProtocolException($"the back-end is stopping with {q.InFlight} requests of queue {q.Index} still in the device");
        }
    }

    /// <summary>Wakes a blocked Run (the server is stopping); waits for the device from now on are bounded.</summary>
    public void Shutdown()
    {
        _drainDeadline.Arm(_ctx.Options.DrainTimeout);
        Native.Shutdown(_socket, Native.SHUT_RDWR);
    }

    /// <summary>
    /// Ends the session once every request handed to the device has completed, or after the
    /// drain timeout: then the guest memory and the in-flight area stay mapped (leaked) for the
    /// completions still to come, which write their status and used entries there.
    /// </summary>
    public void Dispose()
    {
        _drainDeadline.Arm(_ctx.Options.DrainTimeout);
        int left = 0;
        foreach (VirtQueue? q in _queues)
        {
            if (q is not null)
            {
                q.Dispose();
                left += q.InFlight;
            }
        }
        if (left == 0)
        {
            _memory.Dispose();
            ReleaseInflightArea();
        }
        else
        {
            _logger.LogError("vhost-user-blk: closed the session after waiting up to {Seconds} s, with {Count} requests still in flight in the device; their guest memory stays mapped",
                _ctx.Options.DrainTimeout.TotalSeconds, left);
        }
        _memory = GuestMemory.Empty;
        CloseUntakenFds();
        Native.CloseQuietly(ref _socket);
    }
}
