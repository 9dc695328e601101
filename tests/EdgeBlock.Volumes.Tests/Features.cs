[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace EdgeBlock.Volumes.Tests;

/// <summary>Data-service combinations by a short name for theories: "none", "checksum", "lz4", "zstd+checksum+encrypt".</summary>
internal static class Features
{
    public static VolumeFeatures? Parse(string spec)
    {
        if (spec == "none") return null;
        var compression = VolumeCompression.Off;
        int level = 0;
        bool checksum = false, encrypted = false;
        foreach (string part in spec.Split('+'))
        {
            if (part == "checksum") checksum = true;
            else if (part == "encrypt") encrypted = true;
            else Assert.True(VolumeFeatures.TryParseCompression(part, out compression, out level, out string error), error);
        }
        return new VolumeFeatures(compression, level, checksum, encrypted);
    }
}
