using EdgeBlock.Initiator;
using EdgeBlock.Storage;
using EdgeBlock.Target.Tests.Support;

namespace EdgeBlock.Target.Tests;

/// <summary>
/// The TCP transport over the file backend's io_uring engine: completions arrive in batches on the ring
/// thread, whose responses the transport writes at the end of each batch (CompletionBatch) with payloads
/// gathered from the slot buffers. Many commands in flight on two queues; every block must read back.
/// </summary>
public sealed class TcpFileBackendTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("edgeblock-tcp-file-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData(4096)]
    [InlineData(128 * 1024)]
    public async Task ConcurrentWritesThenReads_OverIoUring_ReadBackWhatWasWritten(int blockBytes)
    {
        await using var t = TestTarget.Start(withNamespace: false);
        var device = FileBlockDevice.Open(Path.Combine(_directory, "ns.img"), 64L * 1024 * 1024);
        Assert.True(device.UsesIoUring);
        t.AddNamespace(1, device: device);
        await using var host = await t.ConnectAsync(ioQueues: 2, queueSize: 128, options: new NvmeConnectOptions { KatoMs = 0 });

        const int Workers = 32, PerWorker = 8;
        ushort blocks = (ushort)(blockBytes / 512);
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(w => Task.Run(async () =>
        {
            var buffer = new byte[blockBytes];
            for (int i = 0; i < PerWorker; i++)
            {
                ulong lba = (ulong)((w * PerWorker + i) * blocks);
                Fill(buffer, lba);
                var c = await host.WriteAsync(1, lba, blocks, buffer);
                Assert.True(c.IsSuccess, $"write at {lba}: {c}");
            }
        })));
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(w => Task.Run(async () =>
        {
            var buffer = new byte[blockBytes];
            var expected = new byte[blockBytes];
            for (int i = 0; i < PerWorker; i++)
            {
                ulong lba = (ulong)((w * PerWorker + i) * blocks);
                var c = await host.ReadAsync(1, lba, blocks, buffer);
                Assert.True(c.IsSuccess, $"read at {lba}: {c}");
                Fill(expected, lba);
                Assert.True(expected.AsSpan().SequenceEqual(buffer), $"data at LBA {lba} differs");
            }
        })));
    }

    private static void Fill(byte[] buffer, ulong lba)
    {
        for (int i = 0; i < buffer.Length; i++) buffer[i] = (byte)(lba * 31 + (ulong)i * 7 + (ulong)(i >> 9));
    }
}
