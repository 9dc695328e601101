using System.Numerics;
using EdgeBlock.Storage;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Transports.Ublk;

/// <summary>
/// An <see cref="IBlockDevice"/> served to this host's kernel as /dev/ublkbN. Lifetime: ADD_DEV → SET_PARAMS →
/// queues fetch → START_DEV (the disk appears); disposing: STOP_DEV (the disk goes; what was queued is served
/// first) → queue threads end → rings and /dev/ublkcN closed → DEL_DEV. The device stays the caller's: it is
/// neither flushed nor disposed here (the kernel flushes through us when the disk goes, if it has a cache to).
/// </summary>
public sealed class UblkDevice : IAsyncDisposable
{
    /// <summary>Largest discard or write-zeroes request the kernel sends: 1 GiB keeps one request's work bounded.</summary>
    private const uint MaxDiscardSectors = (1u << 30) >> UblkAbi.SectorShift;

    private readonly UblkControl _control;
    private readonly int _charFd;
    private readonly UblkQueue[] _queues;
    private readonly ILogger _logger;
    private readonly TimeSpan _stopTimeout;
    private int _disposed;

    private UblkDevice(UblkControl control, uint id, int charFd, UblkQueue[] queues, TimeSpan stopTimeout, ILogger logger)
    {
        _stopTimeout = stopTimeout;
        _control = control;
        Id = id;
        _charFd = charFd;
        _queues = queues;
        _logger = logger;
    }

    /// <summary>The kernel's device number N.</summary>
    public uint Id { get; }

    /// <summary>/dev/ublkbN.</summary>
    public string BlockDevicePath => UblkAbi.BlockDevicePrefix + Id;

    public UblkStatistics Statistics
    {
        get
        {
            UblkStatistics sum = default;
            foreach (var q in _queues) sum += q.Statistics;
            return sum;
        }
    }

    /// <summary>Why ublk cannot be used on this machine (naming the module), or null.</summary>
    public static string? Unavailable() => UblkControl.Unavailable();

    /// <summary>The parameters the kernel gets for a device (SET_PARAMS): sizes, cache, read-only, discard.</summary>
    internal static UblkAbi.Params Parameters(IBlockDevice device, UblkOptions options)
    {
        byte blockShift = (byte)BitOperations.Log2((uint)device.BlockSize);
        var p = new UblkAbi.Params
        {
            Types = UblkAbi.ParamTypeBasic,
            Basic = new UblkAbi.ParamBasic
            {
                // A volatile cache, so the kernel sends flushes (the pool commits on them); FUA writes go to the device as FUA.
                Attrs = UblkAbi.AttrVolatileCache | UblkAbi.AttrFua | (options.ReadOnly ? UblkAbi.AttrReadOnly : 0),
                LogicalBsShift = blockShift,
                PhysicalBsShift = Math.Max(blockShift, (byte)12),
                IoMinShift = blockShift,
                IoOptShift = 0,
                MaxSectors = (uint)(options.MaxIoBytes >> UblkAbi.SectorShift),
                DevSectors = (ulong)(device.BlockCount * device.BlockSize) >> UblkAbi.SectorShift,
            },
        };
        if (device.SupportsDeallocate && !options.ReadOnly)
        {
            p.Types |= UblkAbi.ParamTypeDiscard;
            p.Discard = new UblkAbi.ParamDiscard
            {
                DiscardGranularity = (uint)Math.Max(device.BlockSize, 4096),
                MaxDiscardSectors = MaxDiscardSectors,
                MaxWriteZeroesSectors = MaxDiscardSectors,
                MaxDiscardSegments = 1, // one range per request: the descriptor has one start and length
            };
        }
        return p;
    }

    /// <summary>Creates and starts the device; the disk exists when this returns. Throws <see cref="UblkException"/> naming the failed step.</summary>
    public static async Task<UblkDevice> StartAsync(IBlockDevice device, UblkOptions options, ILogger logger)
    {
        options.Validate();
        if (device.BlockSize is < 512 or > 4096)
            throw new UblkException($"ublk serves 512..4096-byte blocks; this device has {device.BlockSize}");
        var control = UblkControl.Open();
        uint id;
        try
        {
            id = control.AddDevice((ushort)options.Queues, (ushort)options.QueueDepth, (uint)options.MaxIoBytes).DevId;
        }
        catch
        {
            control.Dispose();
            throw;
        }
        int charFd = -1;
        var queues = new List<UblkQueue>();
        try
        {
            control.SetParams(id, Parameters(device, options));
            charFd = await OpenCharDeviceAsync(id).ConfigureAwait(false);
            for (int q = 0; q < options.Queues; q++) queues.Add(new UblkQueue(q, charFd, device, options, $"ublk{id}", logger));
            await Task.WhenAll(queues.Select(q => q.StartAsync())).ConfigureAwait(false);
            await Task.Run(() => control.Start(id)).ConfigureAwait(false);
        }
        catch
        {
            await TearDownAsync(control, id, charFd, queues, started: false, options.StopTimeout, logger).ConfigureAwait(false);
            throw;
        }
        logger.LogInformation("ublk device {Path}: {Blocks} blocks of {BlockSize} bytes, {Queues} queue(s) of {Depth}", UblkAbi.BlockDevicePrefix + id,
            device.BlockCount, device.BlockSize, options.Queues, options.QueueDepth);
        return new UblkDevice(control, id, charFd, [.. queues], options.StopTimeout, logger);
    }

    /// <summary>devtmpfs creates /dev/ublkcN with ADD_DEV; udev may still be changing it, so a short retry.</summary>
    private static async Task<int> OpenCharDeviceAsync(uint id)
    {
        string path = UblkAbi.CharDevicePrefix + id;
        for (int attempt = 0; ; attempt++)
        {
            int fd = Native.Open(path, Native.O_RDWR | Native.O_CLOEXEC);
            if (fd >= 0) return fd;
            int errno = Native.LastError;
            if (errno != Native.ENOENT || attempt >= 50) throw new UblkException($"cannot open {path}: {Native.Describe(errno)}");
            await Task.Delay(100).ConfigureAwait(false);
        }
    }

    private static async Task TearDownAsync(UblkControl control, uint id, int charFd, List<UblkQueue> queues, bool started, TimeSpan stopTimeout, ILogger logger)
    {
        if (started)
        {
            int stop = await Task.Run(() => control.Stop(id)).ConfigureAwait(false);
            if (stop < 0) logger.LogWarning("ublk STOP_DEV of device {Id} failed: {Error}", id, Native.Describe(-stop));
        }
        foreach (var q in queues)
        {
            var exited = q.StopAsync();
            if (await Task.WhenAny(exited, Task.Delay(stopTimeout)).ConfigureAwait(false) != exited)
            {
                // Its memory stays mapped for requests a device still holds: leaking beats letting the kernel copy into freed pages.
                logger.LogWarning("ublk device {Id}: a queue still had requests in the device after {Timeout}; its ring is left open", id, stopTimeout);
                continue;
            }
            q.Dispose();
        }
        if (charFd >= 0) Native.Close(charFd);
        // DEL_DEV waits until the driver released /dev/ublkcN, which closing the rings lets it do.
        int del = await Task.Run(() => control.Delete(id)).ConfigureAwait(false);
        if (del < 0) logger.LogWarning("ublk DEL_DEV of device {Id} failed: {Error}", id, Native.Describe(-del));
        control.Dispose();
    }

    /// <summary>Removes the disk (refused by nobody: the caller checks it is not mounted) and frees the device number.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await TearDownAsync(_control, Id, _charFd, [.. _queues], started: true, _stopTimeout, _logger).ConfigureAwait(false);
        _logger.LogInformation("ublk device {Path} removed", BlockDevicePath);
    }
}
