using System.Text.Json;
using EdgeBlock.Daemon.Management;

namespace EdgeBlock.Daemon.KernelEngine;

/// <summary>A port the engine created: ports/<see cref="Id"/> serving <see cref="Address"/>.</summary>
public sealed class OwnedPort
{
    public string Address { get; set; } = "";
    public int Id { get; set; }
}

/// <summary>Which data path serves the desired state: our own NVMe/TCP target, or the Linux in-kernel target (nvmet, via configfs).</summary>
public enum TargetEngine { EdgeBlock, Kernel }

/// <summary>
/// What the kernel engine created under a configfs root, kept in <c>&lt;data dir&gt;/kernel-engine.json</c>:
/// the engine changes and removes only these objects (and the namespaces and links inside them),
/// never what nvmetcli or another tool made.
/// </summary>
public sealed class KernelOwnership
{
    public const string FileName = "kernel-engine.json";

    public string Root { get; set; } = "";
    /// <summary>Port directories (ports/ID) with the normalized listener address each serves.</summary>
    public List<OwnedPort> Ports { get; set; } = [];
    public List<string> Subsystems { get; set; } = [];
    public List<string> Hosts { get; set; } = [];

    public OwnedPort? FindPort(string address) => Ports.FirstOrDefault(p => p.Address == address);

    /// <summary>The record of <paramref name="root"/>, or an empty one (no file, or a file about another root).</summary>
    public static KernelOwnership Load(string path, string root)
    {
        if (File.Exists(path))
        {
            try
            {
                var loaded = JsonSerializer.Deserialize<KernelOwnership>(File.ReadAllBytes(path), ConfigJson.Options);
                if (loaded != null && loaded.Root == root) return loaded;
            }
            catch (JsonException ex)
            {
                throw new InvalidOperationException($"{path} is not readable ({ex.Message}); it lists what the kernel engine created in {root}: fix it, or remove it and clean up leftovers with nvmetcli", ex);
            }
        }
        return new KernelOwnership { Root = root };
    }

    /// <summary>Atomic: temp file, fsync, rename (a crash never leaves a torn record).</summary>
    public void Save(string path)
    {
        string temp = path + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write))
        {
            JsonSerializer.Serialize(stream, this, ConfigJson.Options);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }
}
