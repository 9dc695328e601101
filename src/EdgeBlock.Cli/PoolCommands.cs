using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using EdgeBlock.Api;
using EdgeBlock.Api.Pools;
using EdgeBlock.Naming;

namespace EdgeBlock.Cli;

/// <summary>
/// `edgeblock pool|volume|group ...`: pools over drives, thin volumes with snapshots and clones,
/// and group quotas, through the daemon's API. Exit codes as the other management commands:
/// 0 ok, 1 usage, 2 refused by the daemon (or `pool check` found problems, or `pool scrub` found bad chunks), 3 daemon unreachable.
/// </summary>
public static partial class PoolCommands
{
    /// <summary>Adds pool, volume and group to a root that already has the management commands (their --api-socket option).</summary>
    public static void AddTo(RootCommand root)
    {
        var socket = root.Options.OfType<Option<string?>>().First(o => o.Name == "--api-socket");
        root.Subcommands.Add(Pool(socket));
        root.Subcommands.Add(Volume(socket));
        root.Subcommands.Add(Group(socket));
    }

    // ---- pool ------------------------------------------------------------------------------

    private static Command Pool(Option<string?> socket)
    {
        var group = new Command("pool", "Pools: the drives volumes are carved from");

        var name = PoolArgument();
        var drives = new Argument<string[]>("PATH[:SIZE]")
        {
            Description = "Drives: block devices or files (a missing file is created with SIZE, e.g. /var/lib/eb/d0.img:64G); none with --ceph",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var ceph = new Option<string?>("--ceph") { Description = "Back the pool by a Ceph cluster (its ceph.conf): volumes are RBD images" };
        var cephPool = new Option<string?>("--ceph-pool") { Description = "The RADOS pool holding the images (default rbd)" };
        var cephUser = new Option<string?>("--ceph-user") { Description = "The cephx user (e.g. edgeblock), with --keyring" };
        var keyring = new Option<string?>("--keyring") { Description = "The user's keyring file (mode 0600; the daemon reads it, never shows it)" };
        var cephTimeout = new Option<string?>("--timeout")
        {
            Description = "With --ceph: how long an I/O or call may wait for the cluster before it fails (I/O with Namespace Not Ready), e.g. 10s (default 30s)",
        };
        var extentSize = new Option<string?>("--extent-size") { Description = "Allocation unit, a power of two from 64K to 64M (default 1M)" };
        var force = new Option<bool>("--force") { Description = "Take drives that hold data, a file system or partition signature, or another pool's label (their data is lost)" };
        var create = new Command("create", "Create a pool over one or more drives, or backed by a Ceph cluster (--ceph)")
        {
            name, drives, extentSize, force, ceph, cephPool, cephUser, keyring, cephTimeout,
        };
        create.Validators.Add(r =>
        {
            bool onCeph = r.GetValue(ceph) != null, anyDrive = r.GetValue(drives) is { Length: > 0 };
            if (onCeph == anyDrive) r.AddError("give drives (PATH[:SIZE]...) or --ceph CONF, not both");
            if ((r.GetValue(cephUser) == null) != (r.GetValue(keyring) == null)) r.AddError("--ceph-user and --keyring go together");
            if (r.GetValue(cephTimeout) is { } t)
            {
                if (!onCeph) r.AddError("--timeout applies to a Ceph pool (--ceph)");
                else if (!BenchOptions.TryParseDuration(t, out TimeSpan d, out string error)) r.AddError($"--timeout: {error}");
                else if (d.TotalSeconds % 1 != 0) r.AddError($"--timeout '{t}': whole seconds (librados counts its timeouts in seconds)");
            }
        });
        SetAction(create, socket, async (c, parse) =>
        {
            var request = new CreatePoolRequest(parse.GetValue(name)!, parse.GetValue(drives)!.Select(AbsoluteDrive).ToList(),
                parse.GetValue(extentSize), parse.GetValue(force), AbsolutePath(parse.GetValue(ceph)), parse.GetValue(cephPool),
                parse.GetValue(cephUser), AbsolutePath(parse.GetValue(keyring)), CephTimeoutSeconds(parse.GetValue(cephTimeout)));
            var p = ApiClient.Parse<PoolSummary>(await c.Api.SendAsync(HttpMethod.Post, "v1/pools", request));
            c.Out.WriteLine(p.Kind == "ceph"
                ? $"pool {p.Name} created: {p.Ceph}, {p.Volumes} image(s)"
                : $"pool {p.Name} created: {p.Drives.Count} drive(s), {Sizes.Format(p.SizeBytes)}, extent {Sizes.Format(p.ExtentSize)}");
            return 0;
        });

        var addName = PoolArgument();
        var addDrive = new Argument<string>("PATH[:SIZE]") { Description = "The drive to add (a missing file is created with SIZE)" };
        var addForce = new Option<bool>("--force") { Description = "Take a drive that holds data, a file system or partition signature, or another pool's label (its data is lost)" };
        var add = new Command("add-drive", "Add a drive to a pool while it runs; new allocations use it at once") { addName, addDrive, addForce };
        SetAction(add, socket, async (c, parse) =>
        {
            var p = ApiClient.Parse<PoolSummary>(await c.Api.SendAsync(HttpMethod.Post, $"v1/pools/{ApiClient.Escape(parse.GetValue(addName)!)}/drives",
                new AddDriveRequest(AbsoluteDrive(parse.GetValue(addDrive)!), parse.GetValue(addForce))));
            c.Out.WriteLine($"pool {p.Name}: {p.Drives.Count} drive(s), {Sizes.Format(p.SizeBytes)}, {Sizes.Format(p.FreeBytes)} free");
            return 0;
        });

        var listJson = JsonOption();
        var list = new Command("list", "List pools with their space") { listJson };
        SetAction(list, socket, async (c, parse) =>
        {
            string body = await c.Api.SendAsync(HttpMethod.Get, "v1/pools");
            if (parse.GetValue(listJson)) { c.Out.WriteLine(body); return 0; }
            Table.Write(c.Out, ["NAME", "STATE", "SIZE", "ALLOCATED", "RESERVED", "FREE", "FREEING", "VOLUMES", "DRIVES"],
                ApiClient.Parse<List<PoolSummary>>(body).Select(p => new[]
                {
                    p.Name, p.State, Size(p.SizeBytes), Size(p.AllocatedBytes), Size(p.ReservedBytes), Size(p.FreeBytes), Size(p.FreeingBytes),
                    Num(p.Volumes), Num(p.Drives.Count),
                }));
            return 0;
        });

        var showName = PoolArgument();
        var showJson = JsonOption();
        var show = new Command("show", "Show a pool: space (size, allocated, reserved, free, freeing, logical, physical, ratio) and drives") { showName, showJson };
        SetAction(show, socket, async (c, parse) =>
        {
            string body = await c.Api.SendAsync(HttpMethod.Get, $"v1/pools/{ApiClient.Escape(parse.GetValue(showName)!)}");
            if (parse.GetValue(showJson)) { c.Out.WriteLine(body); return 0; }
            var p = ApiClient.Parse<PoolSummary>(body);
            if (p.Error != null)
            {
                Table.Fields(c.Out, [("pool", $"{p.Name} ({p.State})"), ("error", p.Error), ("metadata", p.MetadataDirectory)]);
                return 0;
            }
            if (p.Kind == "ceph")
            {
                Table.Fields(c.Out, [("pool", $"{p.Name} ({p.State})"), ("ceph", p.Ceph ?? "-"), ("volumes", Num(p.Volumes)), ("metadata", p.MetadataDirectory)]);
                return 0;
            }
            var fields = new List<(string, string)>
            {
                ("pool", $"{p.Name} ({p.State})"), ("id", p.Id?.ToString() ?? "-"), ("metadata", p.MetadataDirectory),
                ("extent", Sizes.Format(p.ExtentSize)), ("size", Sizes.Format(p.SizeBytes)), ("allocated", Sizes.Format(p.AllocatedBytes)),
                ("reserved", $"{Sizes.Format(p.ReservedBytes)} (reservations not yet allocated)"), ("free", Sizes.Format(p.FreeBytes)),
                ("freeing", $"{Sizes.Format(p.FreeingBytes)} (free after the next commit)"), ("volumes", Num(p.Volumes)),
                ("logical", $"{Sizes.Format(p.LogicalBytes)} (written to its volumes)"), ("physical", $"{Sizes.Format(p.PhysicalBytes)} (stored on the drives)"),
                ("ratio", $"{Ratio(p.CompressionRatio)} (logical / physical)"),
            };
            if (p.Counters is { } k)
                fields.Add(("since open", $"{k.Commits} commits, {Sizes.Format(k.MetadataBytesWritten)} metadata written, {k.CapacityExceeded} writes refused (capacity exceeded), {k.CopyOnWrites} copy-on-writes, {k.ChecksumErrors} checksum errors"));
            Table.Fields(c.Out, fields);
            c.Out.WriteLine();
            Table.Write(c.Out, ["DRIVE", "PATH", "SIZE", "ALLOCATED", "FREE"],
                p.Drives.Select(d => new[] { Num(d.Index), d.Path, Size(d.SizeBytes), Size(d.AllocatedBytes), Size(d.FreeBytes) }));
            return 0;
        });

        var checkName = PoolArgument();
        var checkJson = JsonOption();
        var offline = new Option<string?>("--offline")
        {
            Description = "Check the pool in this data directory directly, with the daemon stopped (nothing is written)",
            HelpName = "DATA-DIR",
        };
        var check = new Command("check", "Cross-check a pool's metadata: mappings, refcounts, free space, group usage (exit 2 when problems are found)")
        {
            checkName, checkJson, offline,
        };
        check.Validators.Add(result =>
        {
            if (result.GetValue(offline) is { Length: > 0 } dir && !Directory.Exists(Path.Combine(dir, "pools", result.GetValue(checkName) ?? "")))
                result.AddError($"--offline {dir}: no pool {result.GetValue(checkName)} there (expected {Path.Combine(dir, "pools", result.GetValue(checkName) ?? "")})");
        });
        SetAction(check, socket, async (c, parse) =>
        {
            string pool = parse.GetValue(checkName)!;
            string body;
            if (parse.GetValue(offline) is { Length: > 0 } dataDir)
            {
                body = await InProcess.CheckPoolOfflineAsync(dataDir, pool);
            }
            else
            {
                body = await c.Api.SendAsync(HttpMethod.Get, $"v1/pools/{ApiClient.Escape(pool)}/check");
            }
            var r = ApiClient.Parse<PoolCheckReport>(body);
            if (parse.GetValue(checkJson)) c.Out.WriteLine(body);
            else if (r.Problems.Count == 0)
                c.Out.WriteLine($"pool {pool}: consistent ({r.Volumes} volume(s), {r.MappedExtents} mapped extent(s), {r.AllocatedExtents} allocated, {r.FreeExtents} free)");
            else
            {
                c.Out.WriteLine($"pool {pool}: {r.Problems.Count} problem(s):");
                foreach (string problem in r.Problems) c.Out.WriteLine($"  {problem}");
            }
            return r.Problems.Count == 0 ? 0 : ManagementCommands.ExitRefused;
        });

        foreach (var cmd in new[] { create, add, list, show, check, ScrubCommand.Create(socket) }) group.Subcommands.Add(cmd);
        return group;
    }

    // ---- volume ----------------------------------------------------------------------------

    private static Command Volume(Option<string?> socket)
    {
        var group = new Command("volume", "Thin volumes of a pool, their snapshots and clones");

        var name = VolumeArgument("POOL/NAME", "The new volume");
        var size = new Option<string>("--size") { Description = "Size the host sees, e.g. 20G (space is allocated on first write)", Required = true };
        var reserve = new Option<string?>("--reserve") { Description = "Space guaranteed to this volume, e.g. 5G (refused if the pool cannot honour it)" };
        var tenant = new Option<string?>("--group") { Description = "Group (tenant) whose quota covers this volume" };
        // The daemon parses --compress (one rule for every client); a bad value is its refusal, naming the value.
        var compress = new Option<string?>("--compress")
        {
            Description = "off (default) | lz4 (cheap) | zstd[:LEVEL] (smaller, more CPU; LEVEL 1-19, default 3). Kept for the volume's life",
            HelpName = "off|lz4|zstd[:LEVEL]",
        };
        var checksum = new Option<string>("--checksum")
        {
            Description = "on: a crc32c per stored chunk, checked on every read (corrupt data fails the read instead of being returned)",
            DefaultValueFactory = _ => "off",
        };
        checksum.AcceptOnlyFromAmong("on", "off");
        var encrypt = new Option<bool>("--encrypt") { Description = "AES-256-XTS at rest; needs --key-file or --key-command" };
        var keyFile = new Option<string?>("--key-file")
        {
            Description = "Absolute path of the key: 64 random bytes, mode 0600 (head -c 64 /dev/urandom > FILE; chmod 600 FILE). Read by the daemon at every start",
            HelpName = "PATH",
        };
        var keyCommand = new Option<string?>("--key-command")
        {
            Description = "A command the daemon runs (/bin/sh -c, as its user) whenever the volume opens; it prints the key (64 bytes or 128 hex digits), e.g. from a TPM",
            HelpName = "CMD",
        };
        var create = new Command("create", "Create a thin volume") { name, size, reserve, tenant, compress, checksum, encrypt, keyFile, keyCommand };
        SetAction(create, socket, async (c, parse) =>
        {
            var (pool, volume) = Split(parse.GetValue(name)!);
            var v = ApiClient.Parse<VolumeInfo>(await c.Api.SendAsync(HttpMethod.Post, $"v1/pools/{ApiClient.Escape(pool)}/volumes",
                new CreateVolumeRequest(volume, parse.GetValue(size)!, parse.GetValue(reserve), parse.GetValue(tenant),
                    parse.GetValue(compress), parse.GetValue(checksum) == "on", parse.GetValue(encrypt), KeyPath(parse.GetValue(keyFile)), parse.GetValue(keyCommand))));
            string services = v.Compression != "off" || v.Checksum || v.Encrypted
                ? $", compression {v.Compression}, checksum {OnOff(v.Checksum)}, encryption {(v.Encrypted ? "aes-256-xts" : "off")}" : "";
            c.Out.WriteLine($"volume {v.Pool}/{v.Name} created: {Sizes.Format(v.SizeBytes)}, reserve {Sizes.Format(v.ReserveBytes)}{(v.Group != null ? $", group {v.Group}" : "")}{services}, uuid {v.Uuid}");
            return 0;
        });

        var resizeName = VolumeArgument("POOL/NAME", "The volume");
        var resizeSize = new Option<string>("--size") { Description = "New size; shrinking needs --force and an unallocated end", Required = true };
        var force = new Option<bool>("--force") { Description = "Allow shrinking (refused anyway when data is allocated past the new end)" };
        var resize = new Command("resize", "Grow (or with --force shrink) a volume that is not exported") { resizeName, resizeSize, force };
        SetAction(resize, socket, async (c, parse) =>
        {
            var (pool, volume) = Split(parse.GetValue(resizeName)!);
            var v = ApiClient.Parse<VolumeInfo>(await c.Api.SendAsync(HttpMethod.Post, $"v1/pools/{ApiClient.Escape(pool)}/volumes/{ApiClient.Escape(volume)}/resize",
                new ResizeVolumeRequest(parse.GetValue(resizeSize)!, parse.GetValue(force))));
            c.Out.WriteLine($"volume {v.Pool}/{v.Name}: {Sizes.Format(v.SizeBytes)}");
            return 0;
        });

        var snapName = VolumeArgument("POOL/NAME@SNAP", "The volume and the snapshot's name", snapshot: true);
        var snapshot = new Command("snapshot", "Take a read-only, copy-on-write snapshot (instant; no data copied)") { snapName };
        SetAction(snapshot, socket, async (c, parse) =>
        {
            var (pool, full) = Split(parse.GetValue(snapName)!);
            int at = full.IndexOf('@');
            var v = ApiClient.Parse<VolumeInfo>(await c.Api.SendAsync(HttpMethod.Post, $"v1/pools/{ApiClient.Escape(pool)}/volumes/{ApiClient.Escape(full[..at])}/snapshots",
                new SnapshotRequest(full[(at + 1)..])));
            c.Out.WriteLine($"snapshot {v.Pool}/{v.Name} taken");
            return 0;
        });

        var cloneSource = VolumeArgument("POOL/NAME@SNAP", "The snapshot to clone", snapshot: true);
        var cloneTarget = VolumeArgument("POOL/NEW", "The new volume (same pool)");
        var cloneReserve = new Option<string?>("--reserve") { Description = "Space guaranteed to the clone" };
        var cloneGroup = new Option<string?>("--group") { Description = "Group of the clone (default: the snapshot's)" };
        var clone = new Command("clone", "Create a writable volume from a snapshot (shares its data until written)") { cloneSource, cloneTarget, cloneReserve, cloneGroup };
        SetAction(clone, socket, async (c, parse) =>
        {
            var (pool, snap) = Split(parse.GetValue(cloneSource)!);
            var (newPool, newName) = Split(parse.GetValue(cloneTarget)!);
            if (newPool != pool) throw new DaemonRefusedException(400, "invalid request", $"a clone lives in its snapshot's pool: {pool}/{newName}, not {newPool}/{newName}");
            var v = ApiClient.Parse<VolumeInfo>(await c.Api.SendAsync(HttpMethod.Post, $"v1/pools/{ApiClient.Escape(pool)}/volumes/{ApiClient.Escape(snap)}/clones",
                new CloneRequest(newName, parse.GetValue(cloneReserve), parse.GetValue(cloneGroup))));
            c.Out.WriteLine($"volume {v.Pool}/{v.Name} cloned from {v.Origin}: {Sizes.Format(v.SizeBytes)}, uuid {v.Uuid}");
            return 0;
        });

        var deleteName = VolumeArgument("POOL/NAME", "The volume or snapshot (POOL/NAME@SNAP)", snapshot: true, snapshotOptional: true);
        var delete = new Command("delete", "Delete a volume or snapshot (not while exported); space returns when nothing shares it") { deleteName };
        SetAction(delete, socket, async (c, parse) =>
        {
            var (pool, volume) = Split(parse.GetValue(deleteName)!);
            await c.Api.SendAsync(HttpMethod.Delete, $"v1/pools/{ApiClient.Escape(pool)}/volumes/{ApiClient.Escape(volume)}");
            c.Out.WriteLine($"volume {pool}/{volume} deleted");
            return 0;
        });

        var listPool = new Argument<string?>("POOL") { Description = "Only this pool's volumes (default: every pool)", Arity = ArgumentArity.ZeroOrOne };
        var listJson = JsonOption();
        var list = new Command("list", "List volumes and snapshots") { listPool, listJson };
        SetAction(list, socket, async (c, parse) =>
        {
            string? pool = parse.GetValue(listPool);
            string body = await c.Api.SendAsync(HttpMethod.Get, pool is null ? "v1/volumes" : $"v1/pools/{ApiClient.Escape(pool)}/volumes");
            if (parse.GetValue(listJson)) { c.Out.WriteLine(body); return 0; }
            Table.Write(c.Out, ["VOLUME", "SIZE", "ALLOCATED", "RESERVE", "GROUP", "ORIGIN", "EXPORTED", "COMPRESS", "CHECKSUM", "LOGICAL", "PHYSICAL", "RATIO"],
                ApiClient.Parse<List<VolumeInfo>>(body).Select(v => new[]
                {
                    $"{v.Pool}/{v.Name}", Size(v.SizeBytes), Size(v.AllocatedBytes), Size(v.ReserveBytes), v.Group ?? "-", v.Origin ?? "-",
                    v.IsSnapshot ? "snapshot" : v.Exported ? "yes" : "no",
                    v.Compression, OnOff(v.Checksum), Size(v.LogicalBytes), Size(v.PhysicalBytes), Ratio(v.CompressionRatio),
                }));
            return 0;
        });

        var showName = VolumeArgument("POOL/NAME", "The volume or snapshot", snapshot: true, snapshotOptional: true);
        var showJson = JsonOption();
        var show = new Command("show", "Show a volume: size, allocated, reserved, group, origin, UUID, compression and checksums, logical and physical space, map memory") { showName, showJson };
        SetAction(show, socket, async (c, parse) =>
        {
            var (pool, volume) = Split(parse.GetValue(showName)!);
            string body = await c.Api.SendAsync(HttpMethod.Get, $"v1/pools/{ApiClient.Escape(pool)}/volumes/{ApiClient.Escape(volume)}");
            if (parse.GetValue(showJson)) { c.Out.WriteLine(body); return 0; }
            var v = ApiClient.Parse<VolumeInfo>(body);
            Table.Fields(c.Out,
            [
                ("volume", $"{v.Pool}/{v.Name}{(v.IsSnapshot ? " (read-only snapshot)" : "")}"), ("uuid", v.Uuid.ToString()),
                ("size", Sizes.Format(v.SizeBytes)), ("allocated", Sizes.Format(v.AllocatedBytes)), ("reserve", Sizes.Format(v.ReserveBytes)),
                ("group", v.Group ?? "-"), ("origin", v.Origin ?? "-"), ("exported", v.Exported ? "yes" : "no"),
                ("created", v.Created.ToString("u", CultureInfo.InvariantCulture)),
                ("compression", v.Compression), ("checksum", OnOff(v.Checksum)), ("encryption", v.Encrypted ? "aes-256-xts" : "off"), ("checksum errors", $"{Num(v.ChecksumErrors)} (reads that failed their checksum)"),
                ("logical", $"{Sizes.Format(v.LogicalBytes)} (written)"), ("physical", $"{Sizes.Format(v.PhysicalBytes)} (stored on the drives)"),
                ("ratio", $"{Ratio(v.CompressionRatio)} (logical / physical)"),
                ("map", $"{Sizes.Format(v.MapBytes)} (daemon memory of its map; grows with what is written)"),
                ("qos", DescribeQos(v.Qos)),
                ("throttled", $"{(v.Qos?.ThrottledSeconds ?? 0).ToString("0.###", CultureInfo.InvariantCulture)} s (time some I/O waited for its QoS turn), {Num(v.Qos?.QueueDepth ?? 0)} waiting now"),
                .. v.OriginCopy is { } o ? [("attached image", DescribeOrigin(o))] : Array.Empty<(string, string)>(),
            ]);
            return 0;
        });

        var adoptName = VolumeArgument("POOL/NAME", "The Ceph pool and the volume's name");
        var adoptImage = new Option<string>("--image") { Description = "The existing RBD image (in the pool's Ceph pool); renamed to NAME when the names differ", Required = true, HelpName = "IMG" };
        var adopt = new Command("adopt", "Take an existing RBD image of a Ceph pool's cluster as a volume (its data stays as it is)") { adoptName, adoptImage };
        SetAction(adopt, socket, async (c, parse) =>
        {
            var (pool, volume) = Split(parse.GetValue(adoptName)!);
            var v = ApiClient.Parse<VolumeInfo>(await c.Api.SendAsync(HttpMethod.Post, $"v1/pools/{ApiClient.Escape(pool)}/volumes/{ApiClient.Escape(volume)}/adopt",
                new AdoptVolumeRequest(parse.GetValue(adoptImage)!)));
            c.Out.WriteLine($"volume {v.Pool}/{v.Name} adopted from RBD image {parse.GetValue(adoptImage)}: {Sizes.Format(v.SizeBytes)}, uuid {v.Uuid}");
            return 0;
        });

        foreach (var cmd in new[] { create, resize, snapshot, clone, delete, list, show, adopt, VolumeSet(socket) }) group.Subcommands.Add(cmd);
        return group;
    }

    /// <summary>An attached image's copy: how far, whether it runs, and why the image cannot be used if so.</summary>
    internal static string DescribeOrigin(OriginCopyInfo o) =>
        $"{o.File}: {Sizes.Format(o.BytesCopied)} of {Sizes.Format(o.BytesTotal)} copied ({(o.BytesTotal > 0 ? o.BytesCopied * 100 / o.BytesTotal : 100)}%)"
        + (o.Problem is { } p ? $", unusable: {p}" : o.Copying ? ", copying" : ", copy not running");

    // ---- group -----------------------------------------------------------------------------

    private static Command Group(Option<string?> socket)
    {
        var group = new Command("group", "Groups (tenants) of a pool: a quota caps the allocated space of all their volumes together, QoS limits their I/O together");

        var name = VolumeArgument("POOL/TENANT", "The pool and the group");
        var quota = new Option<string?>("--quota") { Description = "Quota, e.g. 100G; 'none' removes it" };
        var qos = QosOptions.Create("for all of the group's volumes together");
        var set = new Command("set", "Set a group's quota and QoS limits (the group is created if needed); options left out stay as they are") { name, quota };
        foreach (var option in qos.All) set.Options.Add(option);
        set.Validators.Add(r =>
        {
            if (r.GetValue(quota) == null && !qos.AnyGiven(r)) r.AddError("give at least one of --quota, --iops, --bw, --burst-iops, --burst-bw");
        });
        SetAction(set, socket, async (c, parse) =>
        {
            var (pool, tenant) = Split(parse.GetValue(name)!);
            if (parse.GetValue(quota) is { } q)
            {
                var g = ApiClient.Parse<GroupInfo>(await c.Api.SendAsync(HttpMethod.Put, $"v1/pools/{ApiClient.Escape(pool)}/groups/{ApiClient.Escape(tenant)}",
                    new SetGroupQuotaRequest(q)));
                c.Out.WriteLine($"group {pool}/{g.Name}: quota {(g.QuotaBytes is { } bytes ? Sizes.Format(bytes) : "none")}, {Sizes.Format(g.UsedBytes)} used by {g.VolumeCount} volume(s)");
            }
            if (await SetGroupQosAsync(c, parse, qos, pool, tenant) is { } line) c.Out.WriteLine(line);
            return 0;
        });

        var listPool = PoolArgument();
        var json = JsonOption();
        var list = new Command("list", "List a pool's groups: quota, use and QoS limits") { listPool, json };
        SetAction(list, socket, async (c, parse) =>
        {
            string body = await c.Api.SendAsync(HttpMethod.Get, $"v1/pools/{ApiClient.Escape(parse.GetValue(listPool)!)}/groups");
            if (parse.GetValue(json)) { c.Out.WriteLine(body); return 0; }
            Table.Write(c.Out, ["GROUP", "QUOTA", "USED", "VOLUMES", "QOS"],
                ApiClient.Parse<List<GroupInfo>>(body).Select(g => new[] { g.Name, g.QuotaBytes is { } q ? Size(q) : "none", Size(g.UsedBytes), Num(g.VolumeCount), DescribeQos(g.Qos) }));
            return 0;
        });

        group.Subcommands.Add(set);
        group.Subcommands.Add(list);
        return group;
    }

    // ---- plumbing --------------------------------------------------------------------------

    private sealed record Context(ApiClient Api, TextWriter Out);

    private static Option<bool> JsonOption() => new("--json") { Description = "Print the API's JSON instead of a table" };

    private static Argument<string> PoolArgument() => new("NAME") { Description = "Pool name" };

    /// <summary>POOL/NAME (POOL/NAME@SNAP when <paramref name="snapshot"/>, optionally when <paramref name="snapshotOptional"/>), checked before anything is sent.</summary>
    internal static Argument<string> VolumeArgument(string syntax, string description, bool snapshot = false, bool snapshotOptional = false)
    {
        var argument = new Argument<string>(syntax) { Description = $"{description} ({syntax})" };
        argument.Validators.Add(r =>
        {
            string text = r.GetValueOrDefault<string>() ?? "";
            int at = text.IndexOf('@');
            bool ok = VolumeNames.TrySplit(text, out _, out string name)
                && (snapshot ? (at > 0 ? name.Split('@') is [var v, var s] && VolumeNames.IsValid(v) && VolumeNames.IsValid(s) : snapshotOptional && VolumeNames.IsValid(name))
                             : VolumeNames.IsValid(name));
            if (!ok) r.AddError($"'{text}' is not {syntax} (names of letters, digits, '.', '_' or '-')");
        });
        return argument;
    }

    internal static (string Pool, string Name) Split(string text)
    {
        int slash = text.IndexOf('/');
        return (text[..slash], text[(slash + 1)..]);
    }

    /// <summary>A drive path relative to where the CLI runs becomes absolute (the daemon's working directory differs); ":SIZE" is kept.</summary>
    private static string AbsoluteDrive(string text)
    {
        int last = text.LastIndexOf(':');
        if (last > 0 && text.Length > last + 1 && char.IsLetter(text[^1]) && Sizes.TryParse(text[(last + 1)..], out _, out _))
            return Path.GetFullPath(text[..last]) + text[last..];
        return Path.GetFullPath(text);
    }

    /// <summary>Paths the daemon opens are resolved here, against the CLI's working directory, as drives are.</summary>
    private static string? AbsolutePath(string? path) => path is null ? null : Path.GetFullPath(path);

    /// <summary>A validated --timeout in whole seconds (the validator refused anything else); the daemon checks the range.</summary>
    private static int? CephTimeoutSeconds(string? text) =>
        text is not null && BenchOptions.TryParseDuration(text, out TimeSpan d, out _) ? (int)Math.Min(d.TotalSeconds, int.MaxValue) : null;

    private static string Num(long n) => n.ToString(CultureInfo.InvariantCulture);

    private static string Size(long bytes) => Sizes.Format(bytes);

    private static string OnOff(bool on) => on ? "on" : "off";

    /// <summary>A key file as the daemon must see it: absolute (the daemon's working directory is not the caller's).</summary>
    private static string? KeyPath(string? path) => string.IsNullOrEmpty(path) ? null : Path.GetFullPath(path);

    /// <summary>Logical per physical byte as `zfs get compressratio` prints it: 1.00x.</summary>
    private static string Ratio(double ratio) => ratio.ToString("0.00", CultureInfo.InvariantCulture) + "x";

    private static void SetAction(Command command, Option<string?> socket, Func<Context, ParseResult, Task<int>> action) =>
        ApiAction.Set(command, socket, call => action(new Context(call.Api, call.Out), call.Parse));
}
