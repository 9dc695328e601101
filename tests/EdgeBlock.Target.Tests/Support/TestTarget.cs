using System.Net;
using EdgeBlock.Initiator;
using EdgeBlock.Storage;
using EdgeBlock.Transports.Tcp;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Target.Tests.Support;

/// <summary>
/// An in-process target (NvmeTarget + TcpTransport on 127.0.0.1, an ephemeral port) with one subsystem of
/// memory-backed namespaces, and the .NET initiator to talk to it.
/// </summary>
public sealed class TestTarget : IAsyncDisposable
{
    public const string SubsysNqn = "nqn.2024-01.io.edgeblock:test-subsystem";
    public const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:7d9e3c2a-5b1f-4c8e-9a6d-2f4b8c1e0a37";
    public const string OtherHostNqn = "nqn.2014-08.org.nvmexpress:uuid:1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9";
    public const string Address = "127.0.0.1";
    public const int BlockSize = 4096;
    public const long NamespaceBytes = 64L * 1024 * 1024;

    private TestTarget(NvmeTarget target, Subsystem subsystem, TcpTransport transport)
    {
        Target = target;
        Subsystem = subsystem;
        Transport = transport;
        Port = transport.LocalEndPoint!.Port;
    }

    public NvmeTarget Target { get; }
    public Subsystem Subsystem { get; }
    public TcpTransport Transport { get; }
    public int Port { get; }

    /// <summary>Namespace 1 (64 MiB, 4 KiB blocks) unless <paramref name="withNamespace"/> is false.</summary>
    public static TestTarget Start(TargetLimits? limits = null, bool allowAnyHost = true, bool withNamespace = true, ILogger? logger = null,
        DataBufferPool? buffers = null, TimeSpan busyPoll = default)
    {
        var target = new NvmeTarget(logger, limits: limits);
        var subsystem = new Subsystem(SubsysNqn, allowAnyHost: allowAnyHost);
        target.AddSubsystem(subsystem);
        var transport = new TcpTransport(target, buffers: buffers) { BusyPoll = busyPoll };
        transport.Start(new IPEndPoint(IPAddress.Loopback, 0));
        var t = new TestTarget(target, subsystem, transport);
        if (withNamespace) t.AddNamespace(1);
        return t;
    }

    /// <summary>Stable per NSID, so tests can check NGUID/UUID.</summary>
    public static Guid NamespaceUuid(uint nsid) => new($"6c1f9a2e-0d3b-4e57-8a91-{nsid:x12}");

    public RecordingBlockDevice AddNamespace(uint nsid, long sizeBytes = NamespaceBytes, int blockSize = BlockSize, IBlockDevice? device = null)
    {
        var recording = new RecordingBlockDevice(device ?? new MemoryBlockDevice(sizeBytes, blockSize));
        Subsystem.AddNamespace(new Namespace(nsid, recording, NamespaceUuid(nsid)));
        return recording;
    }

    public RecordingBlockDevice Device(uint nsid) => (RecordingBlockDevice)Subsystem.FindNamespace(nsid)!.Device;

    public Task<NvmeConnectResult> TryConnectAsync(int ioQueues = 2, int queueSize = 128, bool headerDigest = false, bool dataDigest = false,
        NvmeConnectOptions? options = null, string hostNqn = HostNqn, string subsysNqn = SubsysNqn) =>
        NvmeHost.ConnectAsync(Address, Port, subsysNqn, hostNqn, ioQueues, queueSize, headerDigest, dataDigest, options)
            .WaitAsync(TimeSpan.FromSeconds(20));

    public async Task<NvmeController> ConnectAsync(int ioQueues = 2, int queueSize = 128, bool headerDigest = false, bool dataDigest = false,
        NvmeConnectOptions? options = null, string hostNqn = HostNqn)
    {
        var result = await TryConnectAsync(ioQueues, queueSize, headerDigest, dataDigest, options, hostNqn);
        return result.EnsureSuccess();
    }

    public Controller TargetController(ushort cntlid) => Target.Controllers.Single(c => c.Cntlid == cntlid);

    public async ValueTask DisposeAsync() => await Transport.DisposeAsync();
}

/// <summary>Bounded waits, so a missing completion fails the test instead of hanging the run.</summary>
public static class Waits
{
    public static readonly TimeSpan Command = TimeSpan.FromSeconds(10);

    public static Task<T> Within<T>(this ValueTask<T> pending) => pending.AsTask().WaitAsync(Command);
    public static Task<T> Within<T>(this Task<T> pending) => pending.WaitAsync(Command);

    /// <summary>Polls until the condition holds or the time is up.</summary>
    public static async Task<bool> UntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) return false;
            await Task.Delay(20);
        }
        return true;
    }

    /// <summary>Polls an asynchronous condition (e.g. a register read over the wire) until it holds or the time is up.</summary>
    public static async Task<bool> UntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) return false;
            await Task.Delay(20);
        }
        return true;
    }
}

/// <summary>Deterministic test data.</summary>
public static class TestData
{
    public static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }
}
