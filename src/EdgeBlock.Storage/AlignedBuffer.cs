using System.Buffers;
using System.Runtime.InteropServices;

namespace EdgeBlock.Storage;

/// <summary>
/// Zeroed native memory aligned to a page, so I/O buffers qualify for O_DIRECT. The memory
/// never moves: pinning is free and the address can be handed to the kernel as is.
/// There is deliberately no finalizer (CA2015): it could free memory a Span still points at,
/// so an owner that forgets Dispose leaks rather than corrupts.
/// </summary>
public sealed unsafe class AlignedBuffer : MemoryManager<byte>
{
    /// <summary>Page alignment satisfies every device's direct-I/O alignment (logical blocks are at most 4 KiB).</summary>
    public const int Alignment = 4096;

    private readonly int _length;
    /// <summary>Mapped on its own (anonymous mmap) rather than taken from the C heap: see <see cref="Map"/>.</summary>
    private readonly bool _mapped;
    private nint _address;

    public AlignedBuffer(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        void* memory = NativeMemory.AlignedAlloc((nuint)length, Alignment);
        NativeMemory.Clear(memory, (nuint)length);
        _address = (nint)memory;
        _length = length;
    }

    private AlignedBuffer(nint address, int length)
    {
        _address = address;
        _length = length;
        _mapped = true;
    }

    /// <summary>
    /// A buffer that is its own anonymous mapping (zeroed, page aligned), so Dispose gives its pages back to
    /// the kernel at once. The C heap keeps freed blocks of this size for reuse (glibc raises its mmap
    /// threshold after each free), which is how a daemon's RSS stays high after a burst of large I/O.
    /// </summary>
    public static AlignedBuffer Map(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        nint address = Native.Mmap(0, (nuint)length, Native.PROT_READ | Native.PROT_WRITE, Native.MAP_PRIVATE | Native.MAP_ANONYMOUS, -1, 0);
        if (address == Native.MAP_FAILED) throw new OutOfMemoryException($"mmap of {length} bytes failed: {Native.Describe(Native.LastError)}");
        return new AlignedBuffer(address, length);
    }

    public int Length => _length;

    /// <summary>Start of the buffer; valid until Dispose.</summary>
    public byte* Pointer
    {
        get
        {
            nint address = _address;
            ObjectDisposedException.ThrowIf(address == 0, this);
            return (byte*)address;
        }
    }

    public Span<byte> Span => GetSpan();

    public override Span<byte> GetSpan() => new(Pointer, _length);

    public override MemoryHandle Pin(int elementIndex = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(elementIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(elementIndex, _length);
        return new MemoryHandle(Pointer + elementIndex);
    }

    public override void Unpin()
    {
        // Native memory is never moved by the GC; there is nothing to release.
    }

    /// <summary>
    /// Whether the memory's first byte lies on an alignment boundary. Allocates nothing: our
    /// own buffers are checked by address, anything else is pinned only for the check, so
    /// the answer for movable managed arrays may change once they are unpinned.
    /// </summary>
    public static bool IsAligned(ReadOnlyMemory<byte> memory, int alignment)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(alignment);
        if (MemoryMarshal.TryGetMemoryManager(memory, out AlignedBuffer? buffer, out int start, out _))
        {
            return IsAligned(buffer.Pointer + start, alignment);
        }
        using MemoryHandle pin = memory.Pin();
        return IsAligned(pin.Pointer, alignment);
    }

    /// <summary>Whether an address lies on an alignment boundary.</summary>
    public static bool IsAligned(void* address, int alignment) => (nuint)address % (nuint)alignment == 0;

    protected override void Dispose(bool disposing)
    {
        nint address = Interlocked.Exchange(ref _address, 0);
        if (address == 0) return;
        if (_mapped) Native.Munmap(address, (nuint)_length);
        else NativeMemory.AlignedFree((void*)address);
    }
}
