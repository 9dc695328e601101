using System.Buffers.Binary;
using EdgeBlock.Storage;

namespace EdgeBlock.Transports.VhostUser.Tests;

/// <summary>A server on a fresh socket with a memory device, and helpers to run virtio-blk requests through a raw client.</summary>
internal sealed class Harness : IAsyncDisposable
{
    public const long DeviceBytes = 16 << 20;
    private readonly string _dir;

    public Harness(IBlockDevice? device = null, VhostUserBlkOptions? options = null)
    {
        _dir = Directory.CreateTempSubdirectory("ebvh").FullName;
        SocketPath = Path.Combine(_dir, "s");
        Device = device ?? new MemoryBlockDevice(DeviceBytes);
        Logger = new ListLogger();
        Server = new VhostUserBlkServer(SocketPath, Device, options ?? new VhostUserBlkOptions { MaxQueues = 4 }, Logger);
        Server.Start();
    }

    public string SocketPath { get; }
    public IBlockDevice Device { get; }
    public VhostUserBlkServer Server { get; }
    public ListLogger Logger { get; }

    public RawVhostClient Connect(int queues = 2, bool negotiate = true, bool indirect = true, bool eventIdx = false)
    {
        var c = new RawVhostClient(SocketPath, queues);
        if (negotiate)
        {
            c.Negotiate(indirect, eventIdx);
        }
        return c;
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        await Device.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }
}

/// <summary>Builds and runs virtio-blk requests on a RawVhostClient queue.</summary>
internal static unsafe class Blk
{
    public static ulong Header(RawVhostClient c, int queue, int slot, uint type, ulong sector)
    {
        ulong gpa = RawVhostClient.ScratchGpa(queue) + (ulong)(slot * 64);
        byte* h = c.Host(gpa);
        *(uint*)h = type;
        *(uint*)(h + 4) = 0;
        *(ulong*)(h + 8) = sector;
        return gpa;
    }

    public static ulong Status(RawVhostClient c, int queue, int slot)
    {
        ulong gpa = RawVhostClient.ScratchGpa(queue) + (ulong)(slot * 64) + 32;
        *c.Host(gpa) = 0xff;
        return gpa;
    }

    public static byte StatusOf(RawVhostClient c, int queue, int slot) => *c.Host(RawVhostClient.ScratchGpa(queue) + (ulong)(slot * 64) + 32);

    /// <summary>Publishes one chain, kicks, waits for its completion; returns (status, used len).</summary>
    public static (byte Status, uint Len) Run(RawVhostClient c, int queue, ushort head, int slot = 0)
    {
        ushort target = (ushort)(c.UsedIdx(queue) + 1);
        c.Publish(queue, head);
        c.Kick(queue);
        Assert.True(c.WaitUsed(queue, target), $"queue {queue}: no completion for head {head}");
        (uint id, uint len) = c.UsedElement(queue, target - 1);
        Assert.Equal(head, (ushort)id);
        return (StatusOf(c, queue, slot), len);
    }

    public static (byte, uint) Write(RawVhostClient c, int queue, ulong sector, ulong dataGpa, uint length)
    {
        ushort head = c.AddChain(queue,
            new(Header(c, queue, 0, Virtio.BlkTOut, sector), 16, false),
            new(dataGpa, length, false),
            new(Status(c, queue, 0), 1, true));
        return Run(c, queue, head);
    }

    public static (byte, uint) Read(RawVhostClient c, int queue, ulong sector, ulong dataGpa, uint length)
    {
        ushort head = c.AddChain(queue,
            new(Header(c, queue, 0, Virtio.BlkTIn, sector), 16, false),
            new(dataGpa, length, true),
            new(Status(c, queue, 0), 1, true));
        return Run(c, queue, head);
    }

    public static void Fill(RawVhostClient c, ulong gpa, int length, int seed)
    {
        var rng = new Random(seed);
        rng.NextBytes(new Span<byte>(c.Host(gpa), length));
    }

    public static Span<byte> Bytes(RawVhostClient c, ulong gpa, int length) => new(c.Host(gpa), length);

    public static byte[] DiscardRange(ulong sector, uint count, uint flags)
    {
        byte[] b = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(b, sector);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), count);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(12), flags);
        return b;
    }
}
