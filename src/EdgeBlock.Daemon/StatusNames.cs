using System.Collections.Frozen;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using EdgeBlock.Nvme;

namespace EdgeBlock.Daemon;

/// <summary>Readable names of NVMe statuses ("lba_out_of_range"), from the <see cref="NvmeStatus"/> constants, for metrics and stats.</summary>
public static class StatusNames
{
    private static readonly FrozenDictionary<(StatusCodeType, byte), string> Names = typeof(NvmeStatus)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.FieldType == typeof(NvmeStatus))
        .Select(f => (Status: (NvmeStatus)f.GetValue(null)!, Name: JsonNamingPolicy.SnakeCaseLower.ConvertName(f.Name)))
        .GroupBy(x => (x.Status.Sct, x.Status.Sc))
        .ToFrozenDictionary(g => g.Key, g => g.First().Name);

    /// <summary>The name of a status, or "sct_Xh_sc_YYh" for one the target has no constant for.</summary>
    public static string Of(StatusCodeType sct, byte sc) =>
        Names.TryGetValue((sct, sc), out string? name) ? name
            : string.Create(CultureInfo.InvariantCulture, $"sct_{(byte)sct:x}h_sc_{sc:x2}h");

    /// <summary>"1h" / "85h": how the spec writes SCT and SC values.</summary>
    public static string Hex(byte value, int digits) => value.ToString(digits == 1 ? "X" : "X2", CultureInfo.InvariantCulture) + "h";
}
