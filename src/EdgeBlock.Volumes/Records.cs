using System.Text.Json;
using System.Text.Json.Serialization;

namespace EdgeBlock.Volumes;

/// <summary>The pool itself: identity, extent size and the next volume id.</summary>
internal sealed record PoolRecord(string Name, Guid Id, int FormatVersion, int ExtentSize, long NextVolumeId, DateTimeOffset Created);

/// <summary>One member drive: where it is and how many extents it holds.</summary>
internal sealed record DriveRecord(int Index, Guid Id, string Path, long ExtentCount, DateTimeOffset Added);

/// <summary>A volume or a snapshot. Snapshots are read-only and named NAME@SNAP.</summary>
internal sealed record VolumeRecord(
    long Id, string Name, Guid Uuid, long SizeBytes, long ReserveBytes, string? Group,
    bool IsSnapshot, string? Origin, DateTimeOffset Created, VolumeFeatures? Features = null, VolumeEncryption? Encryption = null)
{
    /// <summary>Data services; records written before they existed have none.</summary>
    public VolumeFeatures EffectiveFeatures => Features ?? VolumeFeatures.None;
}

/// <summary>A tenant's quota over the allocated space of all its volumes.</summary>
internal sealed record GroupRecord(string Name, long? QuotaBytes);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true)]
[JsonSerializable(typeof(PoolRecord))]
[JsonSerializable(typeof(DriveRecord))]
[JsonSerializable(typeof(VolumeRecord))]
[JsonSerializable(typeof(GroupRecord))]
[JsonSerializable(typeof(VolumeFeatures))]
[JsonSerializable(typeof(VolumeEncryption))]
[JsonSerializable(typeof(ScrubState))]
[JsonSerializable(typeof(VolumeOriginRecord))]
internal sealed partial class RecordJson : JsonSerializerContext
{
    public static byte[] Encode<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, typeof(T), Default);

    public static T Decode<T>(ReadOnlySpan<byte> json) =>
        (T)(JsonSerializer.Deserialize(json, typeof(T), Default) ?? throw new InvalidDataException($"empty {typeof(T).Name} record"));
}
