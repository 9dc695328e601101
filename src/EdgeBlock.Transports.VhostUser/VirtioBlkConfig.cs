using System.Buffers.Binary;

namespace EdgeBlock.Transports.VhostUser;

/// <summary>The virtio-blk configuration space (virtio 1.1, 5.2.4) and the feature bits that go with it.</summary>
internal static class VirtioBlkConfig
{
    /// <summary>struct virtio_blk_config up to the secure-erase fields.</summary>
    public const int Size = 72;

    public static ulong Features(BlkDeviceContext ctx)
    {
        ulong f = 1UL << Virtio.FVersion1
            | 1UL << VhostUser.FProtocolFeatures
            | 1UL << Virtio.BlkFSegMax
            | 1UL << Virtio.BlkFBlkSize
            | 1UL << Virtio.BlkFFlush
            | 1UL << Virtio.BlkFMq
            | 1UL << Virtio.BlkFDiscard
            | 1UL << Virtio.BlkFWriteZeroes;
        if (ctx.Options.IndirectDescriptors)
        {
            f |= 1UL << Virtio.FRingIndirectDesc;
        }
        if (ctx.Options.EventIndex)
        {
            f |= 1UL << Virtio.FRingEventIdx;
        }
        if (ctx.ReadOnly)
        {
            f |= 1UL << Virtio.BlkFRo;
        }
        return f;
    }

    public static void Write(BlkDeviceContext ctx, Span<byte> config)
    {
        config.Clear();
        uint sectorsPerBlock = (uint)(ctx.BlockSize >> Virtio.SectorShift);
        // Largest discard/write-zeroes range: 2 GiB, whole blocks.
        uint maxRangeSectors = (1u << 22) & ~(sectorsPerBlock - 1);
        BinaryPrimitives.WriteUInt64LittleEndian(config, ctx.CapacitySectors);
        BinaryPrimitives.WriteUInt32LittleEndian(config[8..], 0);                        // size_max (not offered)
        BinaryPrimitives.WriteUInt32LittleEndian(config[12..], (uint)ctx.Options.SegMax);
        BinaryPrimitives.WriteUInt32LittleEndian(config[20..], (uint)ctx.BlockSize);     // blk_size
        BinaryPrimitives.WriteUInt16LittleEndian(config[34..], (ushort)ctx.Options.MaxQueues);
        BinaryPrimitives.WriteUInt32LittleEndian(config[36..], maxRangeSectors);         // max_discard_sectors
        BinaryPrimitives.WriteUInt32LittleEndian(config[40..], VirtioBlkHandler.MaxDiscardSegments);
        BinaryPrimitives.WriteUInt32LittleEndian(config[44..], sectorsPerBlock);         // discard_sector_alignment
        BinaryPrimitives.WriteUInt32LittleEndian(config[48..], maxRangeSectors);         // max_write_zeroes_sectors
        BinaryPrimitives.WriteUInt32LittleEndian(config[52..], VirtioBlkHandler.MaxDiscardSegments);
        config[56] = ctx.SupportsDeallocate ? (byte)1 : (byte)0;                         // write_zeroes_may_unmap
    }
}
