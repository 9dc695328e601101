using System.Diagnostics;
using System.Net;
using EdgeBlock.Daemon.Management;
using EdgeBlock.Initiator;
using EdgeBlock.Storage;
using EdgeBlock.Target;
using EdgeBlock.Transports.Tcp;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeBlock.Daemon.Tests;

/// <summary>A removed namespace's device closes when the commands inside it finished: not before, and not a fixed time later.</summary>
public sealed class DeviceTeardownTests : IAsyncLifetime
{
    private const string SubsystemNqn = "nqn.2026-12.io.edgeblock:teardown";
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:5a1d0c3e-7f2b-4a69-9c0e-1d2b3c4d5e6f";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private readonly NvmeTarget _target = new(NullLogger.Instance);
    private readonly Subsystem _subsystem = new(SubsystemNqn, allowAnyHost: true);
    private TcpTransport _transport = null!;

    public Task InitializeAsync()
    {
        _target.AddSubsystem(_subsystem);
        _transport = new TcpTransport(_target, NullLogger.Instance);
        _transport.Start(new IPEndPoint(IPAddress.Loopback, 0));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _transport.DisposeAsync();

    private async Task<NvmeController> ConnectAsync() =>
        (await NvmeHost.ConnectAsync("127.0.0.1", _transport.LocalEndPoint!.Port, SubsystemNqn, HostNqn, ioQueues: 2).WaitAsync(Bound)).EnsureSuccess();

    [Fact]
    public async Task Retire_CommandsInsideTheDevice_ClosesItOnlyAfterTheyFinishedAndPromptlyThen()
    {
        var device = new GatedDevice();
        _subsystem.AddNamespace(new Namespace(1, device, Guid.NewGuid()));
        await using var controller = await ConnectAsync();
        const int commands = 8;
        device.Hold(commands);
        var reads = Enumerable.Range(0, commands)
            .Select(i => controller.ReadAsync(1, (ulong)i, 1, new byte[GatedDevice.Block], qid: (ushort)(1 + i % 2)).AsTask()).ToList();
        await device.AllEntered.WaitAsync(Bound);

        var ns = _subsystem.RemoveNamespace(1)!;
        new DeviceTeardown(NullLogger.Instance).Retire(SubsystemNqn, ns);
        await Task.Delay(300); // time enough to close the device, were it closed without counting
        Assert.False(device.IsDisposed, $"the device was closed with {ns.InFlight} command(s) inside it");
        Assert.Equal(commands, ns.InFlight);

        var released = Stopwatch.StartNew();
        device.Release();
        await device.Disposed.WaitAsync(Bound);
        Assert.True(released.Elapsed < TimeSpan.FromSeconds(1), $"the device closed {released.Elapsed.TotalMilliseconds:F0} ms after its last command finished");
        foreach (var read in reads) Assert.True((await read.WaitAsync(Bound)).IsSuccess);
        Assert.Equal(0, device.CompletedAfterDispose);
        Assert.Equal(0, ns.InFlight);
    }

    [Fact]
    public async Task Retire_NothingInFlight_ClosesTheDeviceAtOnce()
    {
        var device = new GatedDevice();
        _subsystem.AddNamespace(new Namespace(1, device, Guid.NewGuid()));
        await using var controller = await ConnectAsync();
        Assert.True((await controller.ReadAsync(1, 0, 1, new byte[GatedDevice.Block], qid: 1)).IsSuccess); // used, then idle

        var removed = Stopwatch.StartNew();
        new DeviceTeardown(NullLogger.Instance).Retire(SubsystemNqn, _subsystem.RemoveNamespace(1)!);
        await device.Disposed.WaitAsync(Bound);

        Assert.True(removed.Elapsed < TimeSpan.FromMilliseconds(500), $"an idle namespace's device took {removed.Elapsed.TotalMilliseconds:F0} ms to close");
        Assert.Equal(1, device.Flushes); // flushed before it closed
    }

    [Fact]
    public async Task Retire_ACommandThatDoesNotFinish_WarnsWithTheCountAndClosesAfterTheBoundedWait()
    {
        var device = new GatedDevice();
        _subsystem.AddNamespace(new Namespace(7, device, Guid.NewGuid()));
        await using var controller = await ConnectAsync();
        device.Hold(1);
        var read = controller.ReadAsync(7, 0, 1, new byte[GatedDevice.Block], qid: 1).AsTask();
        await device.AllEntered.WaitAsync(Bound);

        var log = new ListLogger();
        var removed = Stopwatch.StartNew();
        new DeviceTeardown(log, maxWait: TimeSpan.FromMilliseconds(200)).Retire(SubsystemNqn, _subsystem.RemoveNamespace(7)!);
        await device.Disposed.WaitAsync(Bound);

        Assert.True(removed.Elapsed >= TimeSpan.FromMilliseconds(190), $"closed after {removed.Elapsed.TotalMilliseconds:F0} ms, before the wait ended");
        var warning = Assert.Single(log.Entries, e => e.Level == LogLevel.Warning);
        Assert.Contains(SubsystemNqn, warning.Message);
        Assert.Contains("namespace 7", warning.Message);
        Assert.Contains("1 command(s) still inside", warning.Message);
        device.Release();
        await read.WaitAsync(Bound);
    }

    /// <summary>A memory device whose reads wait at a gate while it is held; counts what happens after it was closed.</summary>
    private sealed class GatedDevice : IBlockDevice
    {
        public const int Block = 4096;
        private readonly MemoryBlockDevice _inner = new(1 << 20, Block);
        private readonly TaskCompletionSource _disposed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private TaskCompletionSource _allEntered = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _expected;
        private int _entered;
        private int _completedAfterDispose;
        private int _flushes;

        public GatedDevice() => _gate.SetResult();

        public Task AllEntered => _allEntered.Task;
        public Task Disposed => _disposed.Task;
        public bool IsDisposed => _disposed.Task.IsCompleted;
        public int CompletedAfterDispose => Volatile.Read(ref _completedAfterDispose);
        public int Flushes => Volatile.Read(ref _flushes);

        public void Hold(int commands)
        {
            _expected = commands;
            _entered = 0;
            _allEntered = new(TaskCreationOptions.RunContinuationsAsynchronously);
            _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        public void Release() => _gate.TrySetResult();

        public int BlockSize => _inner.BlockSize;
        public long BlockCount => _inner.BlockCount;
        public bool SupportsDeallocate => false;

        public async ValueTask<BlockStatus> ReadAsync(long lba, Memory<byte> buffer)
        {
            if (Interlocked.Increment(ref _entered) == _expected) _allEntered.TrySetResult();
            await _gate.Task;
            var status = await _inner.ReadAsync(lba, buffer);
            if (IsDisposed) Interlocked.Increment(ref _completedAfterDispose);
            return status;
        }

        public ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua) => _inner.WriteAsync(lba, data, fua);

        public ValueTask<BlockStatus> FlushAsync()
        {
            Interlocked.Increment(ref _flushes);
            return _inner.FlushAsync();
        }

        public ValueTask<BlockStatus> WriteZeroesAsync(long lba, long blockCount, bool deallocate) => _inner.WriteZeroesAsync(lba, blockCount, deallocate);
        public ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount) => _inner.DeallocateAsync(lba, blockCount);

        public async ValueTask DisposeAsync()
        {
            _disposed.TrySetResult();
            await _inner.DisposeAsync();
        }
    }

    private sealed class ListLogger : ILogger
    {
        private readonly List<(LogLevel Level, string Message)> _entries = [];

        public IReadOnlyList<(LogLevel Level, string Message)> Entries
        {
            get { lock (_entries) return _entries.ToList(); }
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_entries) _entries.Add((logLevel, formatter(state, exception)));
        }
    }
}
