using EdgeBlock.Daemon.KernelEngine;

namespace EdgeBlock.Daemon.Tests.KernelEngine;

/// <summary>
/// A temp directory that behaves like nvmet's configfs for the rules the engine must follow
/// (drivers/nvme/target/configfs.c): mkdir makes an object with its default groups and
/// attribute files, rmdir refuses an object that still has namespaces or links, attributes of
/// an enabled namespace or a linked port cannot be written, allow_any_host and host links
/// exclude each other, a port link needs the port's address. Every change is recorded.
/// </summary>
public sealed class FakeConfigfs : IConfigfs, IDisposable
{
    private const int ENOENT = 2, EIO = 5, EACCES = 13, EBUSY = 16, EEXIST = 17, EINVAL = 22, ENOTEMPTY = 39, EPERM = 1, EADDRINUSE = 98;
    private readonly Configfs _real = new();

    public FakeConfigfs()
    {
        Base = Path.Combine(Path.GetTempPath(), "edgeblock-configfs-" + Guid.NewGuid().ToString("N"));
        Root = Path.Combine(Base, "nvmet");
        DataDirectory = Path.Combine(Base, "data");
        foreach (string d in new[] { "subsystems", "ports", "hosts" }) Directory.CreateDirectory(Path.Combine(Root, d));
        Directory.CreateDirectory(DataDirectory);
    }

    public string Base { get; }
    public string Root { get; }
    public string DataDirectory { get; }
    /// <summary>Changes in order: "mkdir REL", "rmdir REL", "write REL=VALUE", "link REL", "unlink REL" (REL relative to the root).</summary>
    public List<string> Log { get; } = [];
    /// <summary>"ADDRESS:PORT" values whose port bind fails with EADDRINUSE.</summary>
    public HashSet<string> BusyAddresses { get; } = [];

    public void Dispose()
    {
        try { Directory.Delete(Base, recursive: true); } catch (IOException) { }
    }

    public string Rel(string path) => Path.GetRelativePath(Root, path);

    public bool DirectoryExists(string path) => _real.DirectoryExists(path);
    public bool LinkExists(string path) => _real.LinkExists(path);
    public IReadOnlyList<string> List(string directory) => _real.List(directory);
    public string? Read(string path) => _real.Read(path);

    public void MakeDirectory(string path)
    {
        string parent = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(parent)) throw new ConfigfsException("mkdir", path, ENOENT);
        if (Directory.Exists(path)) throw new ConfigfsException("mkdir", path, EEXIST);
        string kind = Kind(parent);
        Directory.CreateDirectory(path);
        switch (kind)
        {
            case "subsystems":
                Directory.CreateDirectory(Path.Combine(path, "namespaces"));
                Directory.CreateDirectory(Path.Combine(path, "allowed_hosts"));
                Attr(path, "attr_allow_any_host", "0");
                Attr(path, "attr_serial", "1234567890abcdef");
                break;
            case "ports":
                if (!int.TryParse(Path.GetFileName(path), out _)) { Directory.Delete(path); throw new ConfigfsException("mkdir", path, EINVAL); }
                Directory.CreateDirectory(Path.Combine(path, "subsystems"));
                Directory.CreateDirectory(Path.Combine(path, "referrals"));
                Directory.CreateDirectory(Path.Combine(path, "ana_groups", "1"));
                foreach (string a in new[] { "addr_trtype", "addr_adrfam", "addr_traddr", "addr_trsvcid" }) Attr(path, a, "");
                Attr(path, "addr_treq", "not specified");
                break;
            case "namespaces":
                Attr(path, "device_path", "(null)");
                Attr(path, "device_uuid", "00000000-0000-0000-0000-000000000000");
                Attr(path, "device_nguid", "00000000-0000-0000-0000-000000000000");
                Attr(path, "enable", "0");
                Attr(path, "buffered_io", "0");
                break;
            case "hosts":
                break;
            default:
                Directory.Delete(path);
                throw new ConfigfsException("mkdir", path, EPERM);
        }
        Log.Add($"mkdir {Rel(path)}");
    }

    public void RemoveDirectory(string path)
    {
        if (!Directory.Exists(path) || _real.LinkExists(path)) throw new ConfigfsException("rmdir", path, ENOENT);
        string kind = Kind(Path.GetDirectoryName(path)!);
        bool busy = kind switch
        {
            "subsystems" => _real.List(Path.Combine(path, "namespaces")).Count > 0 || _real.List(Path.Combine(path, "allowed_hosts")).Count > 0,
            "ports" => _real.List(Path.Combine(path, "subsystems")).Count > 0 || _real.List(Path.Combine(path, "referrals")).Count > 0,
            _ => false,
        };
        if (busy) throw new ConfigfsException("rmdir", path, ENOTEMPTY);
        if (kind is not ("subsystems" or "ports" or "namespaces" or "hosts")) throw new ConfigfsException("rmdir", path, EPERM);
        Directory.Delete(path, recursive: true); // configfs drops the attributes and default groups with the object
        Log.Add($"rmdir {Rel(path)}");
    }

    public void Write(string path, string value)
    {
        if (!File.Exists(path)) throw new ConfigfsException("open", path, ENOENT);
        string dir = Path.GetDirectoryName(path)!, name = Path.GetFileName(path), kind = Kind(Path.GetDirectoryName(dir)!);
        if (kind == "namespaces")
        {
            bool enabled = _real.Read(Path.Combine(dir, "enable")) == "1";
            if (name is "device_path" or "device_uuid" or "device_nguid" && enabled) throw new ConfigfsException($"write '{value}' to", path, EBUSY);
            if (name == "buffered_io" && enabled) throw new ConfigfsException($"write '{value}' to", path, EINVAL);
            if (name == "enable" && value == "1")
            {
                string device = _real.Read(Path.Combine(dir, "device_path"))!;
                if (device == "(null)" || !File.Exists(device)) throw new ConfigfsException($"write '{value}' to", path, ENOENT);
            }
        }
        if (kind == "ports" && name.StartsWith("addr_", StringComparison.Ordinal) && _real.List(Path.Combine(dir, "subsystems")).Count > 0)
            throw new ConfigfsException($"write '{value}' to", path, EACCES);
        if (kind == "subsystems" && name == "attr_allow_any_host" && value == "1" && _real.List(Path.Combine(dir, "allowed_hosts")).Count > 0)
            throw new ConfigfsException($"write '{value}' to", path, EINVAL);
        File.WriteAllText(path, value + "\n");
        Log.Add($"write {Rel(path)}={value}");
    }

    public void Link(string target, string link)
    {
        string dir = Path.GetDirectoryName(link)!, owner = Path.GetDirectoryName(dir)!;
        if (_real.LinkExists(link)) throw new ConfigfsException("symlink", link, EEXIST);
        if (Path.GetFileName(dir) == "subsystems" && Kind(Path.GetDirectoryName(owner)!) == "ports")
        {
            if (Kind(Path.GetDirectoryName(target)!) != "subsystems" || !Directory.Exists(target)) throw new ConfigfsException("symlink", link, EINVAL);
            bool firstLink = _real.List(dir).Count == 0;
            if (firstLink && (_real.Read(Path.Combine(owner, "addr_trtype")) != "tcp" || _real.Read(Path.Combine(owner, "addr_traddr")) == "" || _real.Read(Path.Combine(owner, "addr_trsvcid")) == ""))
                throw new ConfigfsException($"symlink {target} as", link, EINVAL);
            if (firstLink && BusyAddresses.Contains($"{_real.Read(Path.Combine(owner, "addr_traddr"))}:{_real.Read(Path.Combine(owner, "addr_trsvcid"))}"))
                throw new ConfigfsException($"symlink {target} as", link, EADDRINUSE);
        }
        else if (Path.GetFileName(dir) == "allowed_hosts" && Kind(Path.GetDirectoryName(owner)!) == "subsystems")
        {
            if (Kind(Path.GetDirectoryName(target)!) != "hosts" || !Directory.Exists(target)) throw new ConfigfsException("symlink", link, EINVAL);
            if (_real.Read(Path.Combine(owner, "attr_allow_any_host")) == "1") throw new ConfigfsException($"symlink {target} as", link, EINVAL);
        }
        else
        {
            throw new ConfigfsException("symlink", link, EPERM);
        }
        File.CreateSymbolicLink(link, target);
        Log.Add($"link {Rel(link)}");
    }

    public void Unlink(string link)
    {
        if (!_real.LinkExists(link)) throw new ConfigfsException("unlink", link, ENOENT);
        File.Delete(link);
        Log.Add($"unlink {Rel(link)}");
    }

    /// <summary>What kind of objects live in <paramref name="group"/>: "subsystems", "ports", "hosts", "namespaces" or "".</summary>
    private string Kind(string group)
    {
        string rel = Rel(group);
        if (rel is "subsystems" or "ports" or "hosts") return rel;
        string[] parts = rel.Split('/');
        if (parts.Length == 3 && parts[0] == "subsystems" && parts[2] == "namespaces") return "namespaces";
        return "";
    }

    private static void Attr(string dir, string name, string value) => File.WriteAllText(Path.Combine(dir, name), value + "\n");

    /// <summary>Makes an object as another tool would (not through the engine, not logged).</summary>
    public void Foreign(Action<FakeConfigfs> make)
    {
        int count = Log.Count;
        make(this);
        Log.RemoveRange(count, Log.Count - count);
    }

    internal static int Eio => EIO;
}
