namespace EdgeBlock.Transports.VhostUser;

/// <summary>
/// The guest's memory as the front-end shared it (SET_MEM_TABLE): up to 8 regions, each an
/// fd mapped into this process. Every address the guest or the front-end gives us goes through
/// <see cref="TryTranslate"/> or <see cref="TryTranslateUser"/>, which refuse any range that is
/// not wholly inside one region, so nothing outside the mappings is ever touched.
/// A table never changes; a new SET_MEM_TABLE builds a new one once the rings are quiet.
/// </summary>
internal sealed unsafe class GuestMemory : IDisposable
{
    internal readonly struct Region
    {
        public readonly ulong GuestAddress;
        public readonly ulong Size;
        public readonly ulong UserAddress;
        public readonly nint Host;       // = mapping + mmap offset
        public readonly nint Mapping;
        public readonly nuint MappingLength;

        public Region(ulong guestAddress, ulong size, ulong userAddress, nint host, nint mapping, nuint mappingLength)
        {
            GuestAddress = guestAddress;
            Size = size;
            UserAddress = userAddress;
            Host = host;
            Mapping = mapping;
            MappingLength = mappingLength;
        }
    }

    private readonly Region[] _regions;
    private int _disposed;

    private GuestMemory(Region[] regions, bool shrinkable)
    {
        _regions = regions;
        Shrinkable = shrinkable;
    }

    /// <summary>
    /// True when some region's file is not sealed against shrinking (F_SEAL_SHRINK): the front-end
    /// could then truncate it under our mapping and an access would raise SIGBUS. QEMU seals its
    /// memfd backends by default (memory-backend-memfd seal=on).
    /// </summary>
    public bool Shrinkable { get; }

    public static readonly GuestMemory Empty = new([], false);

    public int RegionCount => _regions.Length;

    public ReadOnlySpan<Region> Regions => _regions;

    /// <summary>Total bytes of guest memory described.</summary>
    public ulong TotalSize
    {
        get
        {
            ulong total = 0;
            foreach (Region r in _regions)
            {
                total += r.Size;
            }
            return total;
        }
    }

    /// <summary>
    /// Maps the regions. payload is the memory regions description; fds one per region (this
    /// method takes ownership of them: all are closed before it returns, the mappings stay).
    /// Returns null and a reason when the table is unusable.
    /// </summary>
    public static GuestMemory? Map(ReadOnlySpan<byte> payload, ReadOnlySpan<int> fds, out string? error)
    {
        var mapped = new List<Region>();
        bool shrinkable = false;
        try
        {
            if (payload.Length < 8)
            {
                error = $"SET_MEM_TABLE payload of {payload.Length} bytes is shorter than its header";
                return null;
            }
            uint count = BitConverter.ToUInt32(payload);
            if (count == 0 || count > VhostUser.MaxMemoryRegions)
            {
                error = $"SET_MEM_TABLE with {count} regions (1..{VhostUser.MaxMemoryRegions} allowed)";
                return null;
            }
            if (payload.Length < 8 + (int)count * 32)
            {
                error = $"SET_MEM_TABLE payload of {payload.Length} bytes is too short for {count} regions";
                return null;
            }
            if (fds.Length != count)
            {
                error = $"SET_MEM_TABLE names {count} regions but carries {fds.Length} file descriptors";
                return null;
            }
            for (int i = 0; i < count; i++)
            {
                ReadOnlySpan<byte> r = payload.Slice(8 + i * 32, 32);
                ulong gpa = BitConverter.ToUInt64(r);
                ulong size = BitConverter.ToUInt64(r[8..]);
                ulong uva = BitConverter.ToUInt64(r[16..]);
                ulong offset = BitConverter.ToUInt64(r[24..]);
                if (size == 0 || size > long.MaxValue || offset > long.MaxValue - size ||
                    gpa > ulong.MaxValue - size || uva > ulong.MaxValue - size)
                {
                    error = $"memory region {i} (guest 0x{gpa:x}, size 0x{size:x}, offset 0x{offset:x}) overflows";
                    return null;
                }
                // A mapping beyond the end of the file would raise SIGBUS on access: refuse it up front.
                long fileSize = Native.FileSize(fds[i]);
                if (fileSize < 0)
                {
                    error = $"memory region {i}: cannot stat its fd: {Native.Describe(Native.LastError)}";
                    return null;
                }
                if ((ulong)fileSize < offset + size)
                {
                    error = $"memory region {i} needs 0x{offset + size:x} bytes of its file, which has only 0x{fileSize:x}";
                    return null;
                }
                int seals = Native.Fcntl(fds[i], Native.F_GET_SEALS);
                shrinkable |= seals < 0 || (seals & Native.F_SEAL_SHRINK) == 0;
                nuint length = (nuint)(offset + size);
                nint mapping = Native.Mmap(0, length, Native.PROT_READ | Native.PROT_WRITE, Native.MAP_SHARED, fds[i], 0);
                if (mapping == Native.MAP_FAILED)
                {
                    error = $"memory region {i}: mmap of 0x{length:x} bytes failed: {Native.Describe(Native.LastError)}";
                    return null;
                }
                mapped.Add(new Region(gpa, size, uva, mapping + (nint)offset, mapping, length));
            }
            // Overlapping guest ranges would make translation ambiguous.
            for (int i = 0; i < mapped.Count; i++)
            {
                for (int j = i + 1; j < mapped.Count; j++)
                {
                    Region a = mapped[i], b = mapped[j];
                    if (a.GuestAddress < b.GuestAddress + b.Size && b.GuestAddress < a.GuestAddress + a.Size)
                    {
                        error = $"memory regions {i} and {j} overlap in guest physical addresses";
                        return null;
                    }
                }
            }
            error = null;
            var table = new GuestMemory([.. mapped], shrinkable);
            mapped.Clear();
            return table;
        }
        finally
        {
            foreach (Region r in mapped)
            {
                Native.Munmap(r.Mapping, r.MappingLength);
            }
            foreach (int fd in fds)
            {
                Native.Close(fd);
            }
        }
    }

    /// <summary>Host address of guest physical range [gpa, gpa+length), if it lies wholly in one region.</summary>
    public bool TryTranslate(ulong gpa, ulong length, out nint host) => TryTranslate(gpa, length, userAddress: false, out host);

    /// <summary>Host address of a front-end (QEMU) virtual address range, as vring addresses are given.</summary>
    public bool TryTranslateUser(ulong uva, ulong length, out nint host) => TryTranslate(uva, length, userAddress: true, out host);

    private bool TryTranslate(ulong address, ulong length, bool userAddress, out nint host)
    {
        Region[] regions = _regions;
        for (int i = 0; i < regions.Length; i++)
        {
            ref readonly Region r = ref regions[i];
            ulong start = userAddress ? r.UserAddress : r.GuestAddress;
            if (address >= start)
            {
                ulong offset = address - start;
                if (offset < r.Size && length <= r.Size - offset)
                {
                    host = r.Host + (nint)offset;
                    return true;
                }
            }
        }
        host = 0;
        return false;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        foreach (Region r in _regions)
        {
            Native.Munmap(r.Mapping, r.MappingLength);
        }
    }
}
