using System.Buffers;

namespace EdgeBlock.Storage.Tests;

public sealed unsafe class AlignedBufferTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    [InlineData(128 * 1024 + 3)]
    public void New_IsPageAligned_Zeroed_AndOfRequestedLength(int length)
    {
        using var buffer = new AlignedBuffer(length);

        Assert.Equal(0u, (nuint)buffer.Pointer % AlignedBuffer.Alignment);
        Assert.Equal(length, buffer.Length);
        Assert.Equal(length, buffer.Memory.Length);
        Assert.Equal(length, buffer.Span.Length);
        Assert.True(buffer.Span.IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void MemoryAndSpan_ShareTheNativeBytes()
    {
        using var buffer = new AlignedBuffer(8192);

        buffer.Memory.Span[100] = 42;
        buffer.Span[8191] = 7;

        Assert.Equal(42, buffer.Pointer[100]);
        Assert.Equal(7, buffer.Memory.Span[8191]);
    }

    [Fact]
    public void Pin_ReturnsAddressOfElement()
    {
        using var buffer = new AlignedBuffer(8192);

        using MemoryHandle whole = buffer.Memory.Pin();
        using MemoryHandle sliced = buffer.Memory[512..].Pin();

        Assert.Equal((nint)buffer.Pointer, (nint)whole.Pointer);
        Assert.Equal((nint)buffer.Pointer + 512, (nint)sliced.Pointer);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(4097)]
    public void Pin_OutsideBuffer_Throws(int elementIndex)
    {
        using var buffer = new AlignedBuffer(4096);

        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.Pin(elementIndex));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void New_NonPositiveLength_Throws(int length)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new AlignedBuffer(length));
    }

    [Fact]
    public void Dispose_FreesOnce_ThenPointerThrows()
    {
        var buffer = new AlignedBuffer(4096);
        IDisposable owner = buffer;

        owner.Dispose();
        owner.Dispose();

        Assert.Throws<ObjectDisposedException>(() => (nint)buffer.Pointer);
        Assert.Throws<ObjectDisposedException>(() => buffer.Memory.Span.Length);
    }

    [Fact]
    public void IsAligned_OwnBuffer_FollowsTheSliceOffset()
    {
        using var buffer = new AlignedBuffer(3 * 4096);

        Assert.True(AlignedBuffer.IsAligned(buffer.Memory, 4096));
        Assert.True(AlignedBuffer.IsAligned(buffer.Memory[512..], 512));
        Assert.False(AlignedBuffer.IsAligned(buffer.Memory[512..], 4096));
        Assert.False(AlignedBuffer.IsAligned(buffer.Memory[1..], 2));
    }

    [Fact]
    public void IsAligned_PinnedArray_FollowsItsAddress()
    {
        byte[] array = GC.AllocateArray<byte>(3 * 4096, pinned: true);
        int firstAligned;
        fixed (byte* start = array)
        {
            firstAligned = (int)((512 - (nuint)start % 512) % 512);
        }

        Assert.True(AlignedBuffer.IsAligned(array.AsMemory(firstAligned), 512));
        Assert.False(AlignedBuffer.IsAligned(array.AsMemory(firstAligned + 1), 512));
    }

    [Fact]
    public void IsAligned_AllocatesNothing()
    {
        using var buffer = new AlignedBuffer(4096);
        byte[] array = GC.AllocateArray<byte>(4096, pinned: true);
        ReadOnlyMemory<byte> native = buffer.Memory;
        ReadOnlyMemory<byte> managed = array;
        AlignedBuffer.IsAligned(native, 512);
        AlignedBuffer.IsAligned(managed, 512);

        int aligned = 0;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            aligned += AlignedBuffer.IsAligned(native, 512) ? 1 : 0;
            aligned += AlignedBuffer.IsAligned(managed, 1) ? 1 : 0;
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(2000, aligned);
        Assert.Equal(0, allocated);
    }
}
