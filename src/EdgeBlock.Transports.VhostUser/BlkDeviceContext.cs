using System.Text;
using EdgeBlock.Storage;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Transports.VhostUser;

/// <summary>What every queue of one exported device shares: the device and its fixed limits. Read-only.</summary>
internal sealed class BlkDeviceContext
{
    public BlkDeviceContext(IBlockDevice device, VhostUserBlkOptions options, ILogger logger)
    {
        Device = device;
        Logger = logger;
        Options = options;
        BlockSize = device.BlockSize;
        CapacitySectors = (ulong)device.BlockCount * (ulong)device.BlockSize >> Virtio.SectorShift;
        Serial = new byte[Virtio.BlkIdBytes];
        byte[] serial = Encoding.ASCII.GetBytes(options.Serial);
        serial.AsSpan(0, Math.Min(serial.Length, Serial.Length)).CopyTo(Serial);
        SupportsDeallocate = device.SupportsDeallocate;
        Buffers = options.Buffers ?? DataBufferPool.Shared;
    }

    /// <summary>Bounce buffers, under the daemon's memory budget.</summary>
    public DataBufferPool Buffers { get; }

    public IBlockDevice Device { get; }
    public ILogger Logger { get; }
    public VhostUserBlkOptions Options { get; }
    public int BlockSize { get; }
    public ulong CapacitySectors { get; }
    public byte[] Serial { get; }
    public bool SupportsDeallocate { get; }
    public bool ReadOnly => Options.ReadOnly;
    public int MaxTransferBytes => Options.MaxTransferBytes;
}
