using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace EdgeBlock.Volumes;

/// <summary>
/// LZ4 block compression through the system's liblz4 (Debian's liblz4-1, which every install has: systemd and
/// apt link it). On 16 KiB chunks it compressed 1.3–1.8× as fast as K4os's managed port here (BENCHMARKS.md,
/// issue D profile); the block format is the same, so chunks either wrote decode with the other. Where the library
/// is missing, <see cref="Available"/> is false and <see cref="ChunkCodec"/> keeps to K4os.
/// </summary>
internal static unsafe partial class NativeLz4
{
    private const string Library = "liblz4.so.1";

    /// <summary>Whether liblz4 loaded (looked up once).</summary>
    public static readonly bool Available = Probe();

    /// <summary>Compression states (LZ4_sizeofState bytes each, ~16 KiB), lent per call: none allocated per chunk in steady state.</summary>
    private static readonly ConcurrentBag<nint> States = [];
    private static readonly int StateSize = Available ? SizeOfState() : 0;

    [LibraryImport(Library, EntryPoint = "LZ4_sizeofState")]
    private static partial int SizeOfState();

    [LibraryImport(Library, EntryPoint = "LZ4_compress_fast_extState")]
    private static partial int CompressFastExtState(void* state, byte* source, byte* destination, int sourceSize, int capacity, int acceleration);

    [LibraryImport(Library, EntryPoint = "LZ4_decompress_safe")]
    private static partial int DecompressSafe(byte* source, byte* destination, int compressedSize, int capacity);

    private static bool Probe()
    {
        if (!NativeLibrary.TryLoad(Library, out nint handle)) return false;
        bool ok = NativeLibrary.TryGetExport(handle, "LZ4_compress_fast_extState", out _)
            && NativeLibrary.TryGetExport(handle, "LZ4_decompress_safe", out _)
            && NativeLibrary.TryGetExport(handle, "LZ4_sizeofState", out _);
        return ok;
    }

    /// <summary>Compresses source into destination (acceleration 1, lz4's default); the length, or 0 when it does not fit.</summary>
    public static int Compress(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        if (!States.TryTake(out nint state)) state = (nint)NativeMemory.AlignedAlloc((nuint)StateSize, 64);
        try
        {
            fixed (byte* from = source)
            fixed (byte* to = destination)
            {
                return CompressFastExtState((void*)state, from, to, source.Length, destination.Length, 1);
            }
        }
        finally
        {
            States.Add(state);
        }
    }

    /// <summary>Decompresses source into destination; the length written, or a negative value for damaged input.</summary>
    public static int Decompress(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        fixed (byte* from = source)
        fixed (byte* to = destination)
        {
            return DecompressSafe(from, to, source.Length, destination.Length);
        }
    }
}
