using System.CommandLine;
using System.Globalization;
using EdgeBlock.Api;

namespace EdgeBlock.Cli;

/// <summary>
/// The commands that talk to a running daemon over its API: status, listener, host, subsystem, namespace.
/// Exit codes: 0 ok, 1 usage, 2 refused by the daemon, 3 daemon unreachable.
/// </summary>
public static class ManagementCommands
{
    public const int ExitRefused = 2;
    public const int ExitUnreachable = 3;
    private const string ApiSocketName = "--api-socket";

    /// <summary>Adds the global --api-socket option and the management commands to the root command.</summary>
    public static void AddTo(RootCommand root)
    {
        var socket = new Option<string?>(ApiSocketName)
        {
            Description = "The daemon's API socket (default: $EDGEBLOCK_API_SOCKET, /run/edgeblock/api.sock as root, else $XDG_RUNTIME_DIR/edgeblock.sock; `serve --data-dir DIR` uses DIR/api.sock)",
            Recursive = true,
        };
        root.Options.Add(socket);
        root.Subcommands.Add(Status(socket));
        root.Subcommands.Add(Listener(socket));
        root.Subcommands.Add(Host(socket));
        root.Subcommands.Add(Subsystem(socket));
        root.Subcommands.Add(Namespace(socket));
    }

    /// <summary>A root with only the management commands (tests drive the CLI in-process through this).</summary>
    public static RootCommand CreateRoot()
    {
        var root = new RootCommand("EdgeBlock management commands");
        AddTo(root);
        return root;
    }

    /// <summary>
    /// The socket `serve` listens on: --api-socket; else DATA-DIR/api.sock when --data-dir was given
    /// (daemons with their own data directories never collide); else the default socket.
    /// </summary>
    internal static string ServeApiSocket(ParseResult parse, bool explicitDataDir, string dataDirectory)
    {
        var option = parse.RootCommandResult.Command.Options.OfType<Option<string?>>().FirstOrDefault(o => o.Name == ApiSocketName);
        if (option != null && parse.GetValue(option) is { Length: > 0 } given) return Path.GetFullPath(given);
        return explicitDataDir ? Path.Combine(dataDirectory, "api.sock") : ApiSocket.Default();
    }

    // ---- commands -------------------------------------------------------------------

    private static Command Status(Option<string?> socket)
    {
        var json = JsonOption();
        var command = new Command("status", "Show the daemon's state: listeners, subsystems, namespaces, connected controllers") { json };
        SetAction(command, socket, async (c, parse) =>
        {
            string body = await c.Api.SendAsync(HttpMethod.Get, "v1/status");
            if (parse.GetValue(json)) { c.Out.WriteLine(body); return; }
            var s = ApiClient.Parse<StatusInfo>(body);
            c.Out.WriteLine($"EdgeBlock {s.Version} (pid {s.ProcessId}), up {TimeSpan.FromSeconds(s.UptimeSeconds)}");
            Table.Fields(c.Out,
            [
                ("data dir", s.DataDirectory), ("config", s.ConfigPath), ("api socket", s.ApiSocket ?? c.Api.SocketPath),
                ("listeners", Num(s.Listeners)), ("subsystems", Num(s.Subsystems)), ("namespaces", Num(s.Namespaces)), ("controllers", Num(s.Controllers)),
            ]);
            if (s.Memory is { } m)
                Table.Fields(c.Out, [("memory budget", $"{Sizes.Format(m.BudgetBytes)}, in use {Sizes.Format(m.InUseBytes)} (peak {Sizes.Format(m.PeakInUseBytes)}), mapped {Sizes.Format(m.MappedBytes)}, waits {Num(m.Waits)}")]);
        });
        return command;
    }

    private static Command Listener(Option<string?> socket)
    {
        var group = new Command("listener", "NVMe/TCP listeners (ADDRESS:PORT)");
        var address = new Argument<string>("ADDRESS:PORT") { Description = "e.g. 127.0.0.1:4420, 0.0.0.0:4420, [::1]:4420" };
        var add = new Command("add", "Listen on one more address") { address };
        SetAction(add, socket, async (c, parse) =>
        {
            var l = ApiClient.Parse<ListenerInfo>(await c.Api.SendAsync(HttpMethod.Post, "v1/listeners", new AddListenerRequest(parse.GetValue(address)!)));
            c.Out.WriteLine($"listening on {l.BoundAddress ?? l.Address}");
        });
        var removeAddress = new Argument<string>("ADDRESS:PORT") { Description = "A listener as `listener list` shows it" };
        var remove = new Command("remove", "Stop listening on an address (its connections are closed)") { removeAddress };
        SetAction(remove, socket, async (c, parse) =>
        {
            await c.Api.SendAsync(HttpMethod.Delete, $"v1/listeners/{ApiClient.Escape(parse.GetValue(removeAddress)!)}");
            c.Out.WriteLine($"listener {parse.GetValue(removeAddress)} removed");
        });
        var json = JsonOption();
        var list = new Command("list", "List listeners") { json };
        SetAction(list, socket, async (c, parse) =>
        {
            string body = await c.Api.SendAsync(HttpMethod.Get, "v1/listeners");
            if (parse.GetValue(json)) { c.Out.WriteLine(body); return; }
            Table.Write(c.Out, ["ADDRESS", "BOUND", "CONNECTIONS"],
                ApiClient.Parse<List<ListenerInfo>>(body).Select(l => new[] { l.Address, l.BoundAddress ?? "-", Num(l.Connections) }));
        });
        group.Subcommands.Add(add);
        group.Subcommands.Add(remove);
        group.Subcommands.Add(list);
        return group;
    }

    private static Command Host(Option<string?> socket)
    {
        var group = new Command("host", "Connected hosts (controllers)");
        var json = JsonOption();
        var list = new Command("list", "List connected controllers: host NQN, subsystem, queues, address") { json };
        SetAction(list, socket, async (c, parse) =>
        {
            string body = await c.Api.SendAsync(HttpMethod.Get, "v1/hosts");
            if (parse.GetValue(json)) { c.Out.WriteLine(body); return; }
            Table.Write(c.Out, ["CNTLID", "HOST NQN", "SUBSYSTEM", "QUEUES", "ADDRESS"],
                ApiClient.Parse<List<HostInfo>>(body).Select(h => new[] { Num(h.Cntlid), h.HostNqn, h.Subsystem, Num(h.Queues), h.RemoteAddress ?? "-" }));
        });
        group.Subcommands.Add(list);
        return group;
    }

    private static Command Subsystem(Option<string?> socket)
    {
        var group = new Command("subsystem", "NVMe subsystems: what hosts connect to");

        var nqn = NqnArgument();
        var allowAny = new Option<bool>("--allow-any-host") { Description = "Admit any host (otherwise only hosts added with add-host)" };
        var create = new Command("create", "Create a subsystem (it admits only listed hosts unless --allow-any-host)") { nqn, allowAny };
        SetAction(create, socket, async (c, parse) =>
        {
            var s = ApiClient.Parse<SubsystemInfo>(await c.Api.SendAsync(HttpMethod.Post, "v1/subsystems",
                new CreateSubsystemRequest(parse.GetValue(nqn)!, parse.GetValue(allowAny))));
            c.Out.WriteLine($"subsystem {s.Nqn} created ({(s.AllowAnyHost ? "any host may connect" : "no host may connect yet: edgeblock subsystem add-host " + s.Nqn + " HOSTNQN")})");
        });

        var listJson = JsonOption();
        var list = new Command("list", "List subsystems") { listJson };
        SetAction(list, socket, async (c, parse) =>
        {
            string body = await c.Api.SendAsync(HttpMethod.Get, "v1/subsystems");
            if (parse.GetValue(listJson)) { c.Out.WriteLine(body); return; }
            Table.Write(c.Out, ["NQN", "HOSTS", "NAMESPACES", "CONTROLLERS"],
                ApiClient.Parse<List<SubsystemInfo>>(body).Select(s => new[]
                {
                    s.Nqn, s.AllowAnyHost ? "any" : Num(s.Hosts.Count), Num(s.Namespaces.Count), Num(s.Controllers),
                }));
        });

        var showNqn = NqnArgument();
        var showJson = JsonOption();
        var show = new Command("show", "Show a subsystem: access, hosts, namespaces") { showNqn, showJson };
        SetAction(show, socket, async (c, parse) =>
        {
            string body = await c.Api.SendAsync(HttpMethod.Get, $"v1/subsystems/{ApiClient.Escape(parse.GetValue(showNqn)!)}");
            if (parse.GetValue(showJson)) { c.Out.WriteLine(body); return; }
            var s = ApiClient.Parse<SubsystemInfo>(body);
            Table.Fields(c.Out,
            [
                ("subsystem", s.Nqn), ("access", s.AllowAnyHost ? "any host" : "listed hosts only"),
                ("hosts", s.Hosts.Count == 0 ? "-" : string.Join(", ", s.Hosts)), ("controllers", Num(s.Controllers)),
            ]);
            c.Out.WriteLine();
            WriteNamespaces(c.Out, s.Namespaces);
        });

        var setNqn = NqnArgument();
        var setAllowAny = new Option<bool?>("--allow-any-host")
        {
            Description = "true: any host may connect; false: only hosts added with add-host (connected hosts not on the list are disconnected, and refused when they reconnect)",
            Arity = ArgumentArity.ExactlyOne,
            HelpName = "true|false",
        };
        var set = new Command("set", "Change a subsystem's settings: --allow-any-host true|false") { setNqn, setAllowAny };
        set.Validators.Add(r =>
        {
            if (r.GetValue(setAllowAny) == null) r.AddError("give --allow-any-host true|false");
        });
        SetAction(set, socket, async (c, parse) =>
        {
            var s = ApiClient.Parse<SubsystemInfo>(await c.Api.SendAsync(HttpMethod.Patch, $"v1/subsystems/{ApiClient.Escape(parse.GetValue(setNqn)!)}",
                new UpdateSubsystemRequest(parse.GetValue(setAllowAny))));
            c.Out.WriteLine($"subsystem {s.Nqn}: {(s.AllowAnyHost ? "any host may connect" : s.Hosts.Count == 0 ? "no host may connect (edgeblock subsystem add-host " + s.Nqn + " HOSTNQN)" : "only listed hosts may connect: " + string.Join(", ", s.Hosts))}");
        });

        var deleteNqn = NqnArgument();
        var delete = new Command("delete", "Delete a subsystem (connected hosts are disconnected; backing files are kept)") { deleteNqn };
        SetAction(delete, socket, async (c, parse) =>
        {
            await c.Api.SendAsync(HttpMethod.Delete, $"v1/subsystems/{ApiClient.Escape(parse.GetValue(deleteNqn)!)}");
            c.Out.WriteLine($"subsystem {parse.GetValue(deleteNqn)} deleted");
        });

        var addHostNqn = NqnArgument();
        var addHostHost = HostNqnArgument();
        var addHost = new Command("add-host", "Allow a host to connect (with --dhchap-secret-file it must authenticate: NVMe DH-HMAC-CHAP)") { addHostNqn, addHostHost };
        var addHostSecrets = new HostSecretOptions();
        addHostSecrets.AddTo(addHost);
        SetAction(addHost, socket, async (c, parse) =>
        {
            var dhchap = addHostSecrets.Read(parse);
            await c.Api.SendAsync(HttpMethod.Post, $"v1/subsystems/{ApiClient.Escape(parse.GetValue(addHostNqn)!)}/hosts",
                new AddHostRequest(parse.GetValue(addHostHost)!, dhchap));
            c.Out.WriteLine($"host {parse.GetValue(addHostHost)} may connect to {parse.GetValue(addHostNqn)}{(dhchap != null ? " (DH-HMAC-CHAP)" : "")}");
        });

        var secretNqn = NqnArgument();
        var secretHost = HostNqnArgument();
        var setSecret = new Command("set-host-secret", "Set or change a listed host's DH-HMAC-CHAP secrets (connected hosts use them when they re-authenticate)") { secretNqn, secretHost };
        var setSecretOptions = new HostSecretOptions();
        setSecretOptions.AddTo(setSecret);
        SetAction(setSecret, socket, async (c, parse) =>
        {
            var dhchap = setSecretOptions.Read(parse) ?? throw new DaemonRefusedException(400, "missing secret", "--dhchap-secret-file PATH|- is required");
            await c.Api.SendAsync(HttpMethod.Put, $"v1/subsystems/{ApiClient.Escape(parse.GetValue(secretNqn)!)}/hosts/{ApiClient.Escape(parse.GetValue(secretHost)!)}/dhchap", dhchap);
            c.Out.WriteLine($"host {parse.GetValue(secretHost)} on {parse.GetValue(secretNqn)}: DH-HMAC-CHAP secret set");
        });

        var clearNqn = NqnArgument();
        var clearHost = HostNqnArgument();
        var clearSecret = new Command("clear-host-secret", "Let a listed host connect without DH-HMAC-CHAP again") { clearNqn, clearHost };
        SetAction(clearSecret, socket, async (c, parse) =>
        {
            await c.Api.SendAsync(HttpMethod.Delete, $"v1/subsystems/{ApiClient.Escape(parse.GetValue(clearNqn)!)}/hosts/{ApiClient.Escape(parse.GetValue(clearHost)!)}/dhchap");
            c.Out.WriteLine($"host {parse.GetValue(clearHost)} on {parse.GetValue(clearNqn)}: DH-HMAC-CHAP off");
        });

        var removeHostNqn = NqnArgument();
        var removeHostHost = HostNqnArgument();
        var removeHost = new Command("remove-host", "Stop allowing a host (its controllers are disconnected)") { removeHostNqn, removeHostHost };
        SetAction(removeHost, socket, async (c, parse) =>
        {
            await c.Api.SendAsync(HttpMethod.Delete,
                $"v1/subsystems/{ApiClient.Escape(parse.GetValue(removeHostNqn)!)}/hosts/{ApiClient.Escape(parse.GetValue(removeHostHost)!)}");
            c.Out.WriteLine($"host {parse.GetValue(removeHostHost)} removed from {parse.GetValue(removeHostNqn)}");
        });

        foreach (var cmd in new[] { create, list, show, set, delete, addHost, setSecret, clearSecret, removeHost }) group.Subcommands.Add(cmd);
        return group;
    }

    private static Command Namespace(Option<string?> socket)
    {
        var group = new Command("namespace", "Namespaces of a subsystem: the disks hosts see");

        var nqn = NqnArgument();
        var nsid = new Option<uint?>("--nsid") { Description = "Namespace ID (default: the lowest free one)" };
        var backend = new Option<string?>("--backend")
        {
            Description = "What stores the data: null[:SIZE] | memory:SIZE | file:PATH[:SIZE] (a relative PATH is under the data directory) | volume:POOL/NAME",
        };
        var volume = new Option<string?>("--volume") { Description = "Export a pool's volume: POOL/NAME (same as --backend volume:POOL/NAME)" };
        var force = new Option<bool>("--force") { Description = "Export a block device even if it carries a file system or partition signature" };
        var add = new Command("add", "Add a namespace (connected hosts get a namespace-changed event)") { nqn, nsid, backend, volume, force };
        add.Validators.Add(r =>
        {
            if ((r.GetValue(backend) == null) == (r.GetValue(volume) == null)) r.AddError("give either --backend or --volume");
        });
        SetAction(add, socket, async (c, parse) =>
        {
            string spec = parse.GetValue(volume) is { } v ? $"volume:{v}" : parse.GetValue(backend)!;
            var ns = ApiClient.Parse<NamespaceInfo>(await c.Api.SendAsync(HttpMethod.Post, $"v1/subsystems/{ApiClient.Escape(parse.GetValue(nqn)!)}/namespaces",
                new AddNamespaceRequest(spec, parse.GetValue(nsid), Force: parse.GetValue(force))));
            c.Out.WriteLine($"namespace {ns.Nsid} of {parse.GetValue(nqn)}: {ns.Backend}, {Sizes.Format(ns.SizeBytes)}, uuid {ns.Uuid}");
        });

        var removeNqn = NqnArgument();
        var removeNsid = new Argument<uint>("NSID") { Description = "Namespace ID" };
        var remove = new Command("remove", "Remove a namespace (connected hosts get a namespace-changed event; a backing file is kept)") { removeNqn, removeNsid };
        SetAction(remove, socket, async (c, parse) =>
        {
            await c.Api.SendAsync(HttpMethod.Delete,
                $"v1/subsystems/{ApiClient.Escape(parse.GetValue(removeNqn)!)}/namespaces/{parse.GetValue(removeNsid).ToString(CultureInfo.InvariantCulture)}");
            c.Out.WriteLine($"namespace {parse.GetValue(removeNsid)} removed from {parse.GetValue(removeNqn)}");
        });

        var listNqn = NqnArgument();
        var json = JsonOption();
        var list = new Command("list", "List a subsystem's namespaces") { listNqn, json };
        SetAction(list, socket, async (c, parse) =>
        {
            string body = await c.Api.SendAsync(HttpMethod.Get, $"v1/subsystems/{ApiClient.Escape(parse.GetValue(listNqn)!)}/namespaces");
            if (parse.GetValue(json)) { c.Out.WriteLine(body); return; }
            WriteNamespaces(c.Out, ApiClient.Parse<List<NamespaceInfo>>(body));
        });

        group.Subcommands.Add(add);
        group.Subcommands.Add(remove);
        group.Subcommands.Add(list);
        return group;
    }

    private static void WriteNamespaces(TextWriter output, IEnumerable<NamespaceInfo> namespaces) =>
        Table.Write(output, ["NSID", "SIZE", "BACKEND", "UUID"],
            namespaces.Select(n => new[] { Num(n.Nsid), Sizes.Format(n.SizeBytes), n.Backend, n.Uuid.ToString() }));

    // ---- plumbing -------------------------------------------------------------------

    private sealed record Context(ApiClient Api, TextWriter Out);

    private static Option<bool> JsonOption() => new("--json") { Description = "Print the API's JSON instead of a table" };

    private static Argument<string> NqnArgument() => new("NQN") { Description = "Subsystem NQN, e.g. nqn.2026-11.io.edgeblock:vm1" };

    private static Argument<string> HostNqnArgument() => new("HOSTNQN") { Description = "Host NQN (cat /etc/nvme/hostnqn on the host)" };

    private static string Num(long n) => n.ToString(CultureInfo.InvariantCulture);

    private static void SetAction(Command command, Option<string?> socket, Func<Context, ParseResult, Task> action) =>
        ApiAction.Set(command, socket, async call =>
        {
            await action(new Context(call.Api, call.Out), call.Parse);
            return 0;
        });
}
