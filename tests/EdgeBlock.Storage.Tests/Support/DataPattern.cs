namespace EdgeBlock.Storage.Tests.Support;

/// <summary>
/// Bytes that depend on their device offset and a seed, so data read from the wrong place or
/// left over from an older write does not pass for the expected data.
/// </summary>
public static class DataPattern
{
    public static void Fill(Span<byte> buffer, long deviceOffset, byte seed)
    {
        for (int i = 0; i < buffer.Length; i++)
        {
            buffer[i] = Expected(deviceOffset + i, seed);
        }
    }

    public static byte[] Create(int length, long deviceOffset, byte seed)
    {
        byte[] data = new byte[length];
        Fill(data, deviceOffset, seed);
        return data;
    }

    /// <summary>Asserts the pattern, reporting the first differing device offset.</summary>
    public static void AssertMatches(ReadOnlySpan<byte> buffer, long deviceOffset, byte seed)
    {
        for (int i = 0; i < buffer.Length; i++)
        {
            if (buffer[i] != Expected(deviceOffset + i, seed))
            {
                Assert.Fail($"Byte at device offset {deviceOffset + i} is {buffer[i]}, expected {Expected(deviceOffset + i, seed)} (seed {seed}).");
            }
        }
    }

    public static void AssertZeroes(ReadOnlySpan<byte> buffer)
    {
        int nonZero = buffer.IndexOfAnyExcept((byte)0);
        Assert.True(nonZero < 0, $"Byte {nonZero} of the buffer is {(nonZero < 0 ? 0 : buffer[nonZero])}, expected zero.");
    }

    private static byte Expected(long offset, byte seed) => (byte)((offset * 131 + seed * 17 + (offset >> 9)) % 251);
}
