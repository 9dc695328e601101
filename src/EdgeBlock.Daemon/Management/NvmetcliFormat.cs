using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeBlock.Nvme;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// The JSON of Linux <c>nvmetcli save</c> (the kernel target's configfs tree, <c>/etc/nvmet/config.json</c>),
/// read into a desired state and written from one.
/// <para>
/// The format: a top-level object with <c>hosts</c> ([{nqn}]), <c>ports</c> and <c>subsystems</c>. A port is
/// {portid, addr {adrfam, traddr, trsvcid, trtype, treq, tsas}, param, referrals, ana_groups, subsystems [NQN]};
/// a subsystem is {nqn, attr {allow_any_host "0"/"1", serial, model, version, cntlid_min/max, ...},
/// allowed_hosts [NQN], namespaces [{nsid, enable 0/1, ana_grpid, device {path, uuid, nguid}}]}.
/// configfs attributes are strings ("4420", "1"); nsid, portid and enable are numbers. <c>nvmetcli restore</c>
/// creates hosts first (allowed_hosts are symlinks to them), then subsystems, then ports, and sets only the
/// attributes present, enabling a namespace only when its <c>enable</c> is 1.
/// </para>
/// <para>
/// Mapping: a tcp port is a listener (traddr:trsvcid); rdma, fc, loop and pcie ports have no EdgeBlock
/// equivalent and are skipped with a warning (refused with strict). A namespace's device path becomes
/// <c>file:PATH</c> (a regular file or a block device); its UUID is kept. EdgeBlock serves every subsystem
/// on every listener and derives the NGUID from the UUID, so per-port subsystem links and an NGUID that
/// differs from the UUID cannot be carried over (warnings say so).
/// </para>
/// </summary>
public static class NvmetcliFormat
{
    public const string Name = ConfigFormats.Nvmetcli;

    private static readonly string[] SkippedTransports = ["rdma", "fc", "loop", "pcie"];

    // ---- import ---------------------------------------------------------------------------

    /// <summary>Reads an nvmetcli save document. Problems name the field as a JSON path of the document.</summary>
    public static ImportedConfig Read(JsonElement root, string dataDirectory, bool strict)
    {
        var result = new ImportedConfig(Name);
        if (root.ValueKind != JsonValueKind.Object)
        {
            result.Errors.Add($"(document): is {Describe(root)}, not the object `nvmetcli save` writes");
            return result;
        }
        foreach (var p in root.EnumerateObject())
            if (p.Name is not ("hosts" or "ports" or "subsystems"))
                result.Warnings.Add($"{p.Name}: not a field of nvmetcli save; ignored");

        // Skipping something that would have been served is an error under strict, a warning otherwise.
        void Skip(string message)
        {
            if (strict) result.Errors.Add($"{message} (--strict refuses what cannot be carried over)");
            else result.Warnings.Add(message);
        }

        // hosts
        var declaredHosts = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (host, i) in Array(root, "hosts", "hosts", result.Errors))
        {
            string at = $"hosts[{i}]";
            if (host.ValueKind != JsonValueKind.Object) { result.Errors.Add($"{at}: is {Describe(host)}, not an object"); continue; }
            if (String(host, "nqn", at, result.Errors, required: true) is not { } nqn) continue;
            if (!Nqn.IsValid(nqn, out string why)) result.Errors.Add($"{at}.nqn: '{nqn}' is not a valid host NQN: {why}");
            else declaredHosts.Add(nqn);
        }

        // subsystems
        var subsystemIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        var paths = new Dictionary<string, string>(StringComparer.Ordinal);
        var ignoredAttributes = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (s, i) in Array(root, "subsystems", "subsystems", result.Errors))
        {
            string at = $"subsystems[{i}]";
            if (s.ValueKind != JsonValueKind.Object) { result.Errors.Add($"{at}: is {Describe(s)}, not an object"); continue; }
            string? nqn = String(s, "nqn", at, result.Errors, required: true);
            if (nqn != null)
            {
                if (!Nqn.IsValid(nqn, out string why)) result.Errors.Add($"{at}.nqn: '{nqn}' is not a valid NQN: {why}");
                else if (nqn == Nqn.Discovery) result.Errors.Add($"{at}.nqn: '{nqn}' is the discovery subsystem's NQN");
                else if (subsystemIndex.TryGetValue(nqn, out int first)) result.Errors.Add($"{at}.nqn: '{nqn}' is also subsystems[{first}]");
                else subsystemIndex[nqn] = i;
            }
            var spec = new SubsystemSpec { Nqn = nqn ?? "" };

            // attr: allow_any_host is kept; the rest (serial, model, version, cntlid range, ...) EdgeBlock sets itself.
            if (s.TryGetProperty("attr", out var attr) && attr.ValueKind != JsonValueKind.Null)
            {
                if (attr.ValueKind != JsonValueKind.Object) result.Errors.Add($"{at}.attr: is {Describe(attr)}, not an object");
                else
                    foreach (var a in attr.EnumerateObject())
                    {
                        if (a.Name == "allow_any_host")
                        {
                            if (Flag(a.Value) is { } any) spec.AllowAnyHost = any;
                            else result.Errors.Add($"{at}.attr.allow_any_host: {a.Value.GetRawText()} is not \"0\" or \"1\"");
                        }
                        else if (!(a.Name == "serial" && nqn != null && Nqn.IsValid(nqn, out _) && a.Value.ValueKind == JsonValueKind.String
                                   && a.Value.GetString() == new Target.Subsystem(nqn).SerialNumber))
                            ignoredAttributes.Add(a.Name); // (a serial EdgeBlock would report anyway is no loss)
                    }
            }

            var hosts = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (h, k) in Array(s, "allowed_hosts", $"{at}.allowed_hosts", result.Errors))
            {
                string hat = $"{at}.allowed_hosts[{k}]";
                if (h.ValueKind != JsonValueKind.String) { result.Errors.Add($"{hat}: is {Describe(h)}, not a host NQN string"); continue; }
                string host = h.GetString()!;
                if (!Nqn.IsValid(host, out string why)) result.Errors.Add($"{hat}: '{host}' is not a valid host NQN: {why}");
                else if (hosts.Add(host)) spec.Hosts.Add(host);
            }

            if (s.TryGetProperty("passthru", out var passthru) && passthru.ValueKind == JsonValueKind.Array && passthru.GetArrayLength() > 0)
                Skip($"{at}.passthru: EdgeBlock has no NVMe passthru; the passthru controller of {nqn} is not imported");

            var nsids = new Dictionary<uint, int>();
            var backendFields = new List<string>();
            foreach (var (n, j) in Array(s, "namespaces", $"{at}.namespaces", result.Errors))
            {
                string nat = $"{at}.namespaces[{j}]";
                if (n.ValueKind != JsonValueKind.Object) { result.Errors.Add($"{nat}: is {Describe(n)}, not an object"); continue; }
                uint nsid = 0;
                if (!n.TryGetProperty("nsid", out var nsidElement)) result.Errors.Add($"{nat}.nsid: missing");
                else if (Unsigned(nsidElement) is not { } value || value is 0 or > Target.Subsystem.MaxNsid)
                    result.Errors.Add($"{nat}.nsid: {nsidElement.GetRawText()} is not a namespace ID EdgeBlock serves (1..{Target.Subsystem.MaxNsid})");
                else if (nsids.TryGetValue((uint)value, out int other)) result.Errors.Add($"{nat}.nsid: {value} is also {at}.namespaces[{other}]");
                else { nsid = (uint)value; nsids[nsid] = j; }

                bool enabled = n.TryGetProperty("enable", out var enable) && Flag(enable) == true;
                if (n.TryGetProperty("enable", out enable) && Flag(enable) == null)
                    result.Errors.Add($"{nat}.enable: {enable.GetRawText()} is not 0 or 1");

                string dat = $"{nat}.device";
                if (!n.TryGetProperty("device", out var device) || device.ValueKind != JsonValueKind.Object)
                {
                    result.Errors.Add($"{dat}: missing (a namespace needs device.path)");
                    continue;
                }
                string? path = String(device, "path", dat, result.Errors, required: true);
                Guid? uuid = Id(device, "uuid", dat, result.Errors);
                Guid? nguid = Id(device, "nguid", dat, result.Errors);
                if (path == null) continue;
                if (path.Length == 0) { result.Errors.Add($"{dat}.path: is empty (nvmet needs a block device or file)"); continue; }
                if (!Path.IsPathFullyQualified(path)) { result.Errors.Add($"{dat}.path: '{path}' is not an absolute path"); continue; }
                if (!enabled)
                {
                    Skip($"{nat}: namespace {nsid} of {nqn} ({path}) is not enabled (enable is not 1), so nvmetcli restore would not serve it; not imported");
                    continue;
                }
                if (Directory.Exists(path)) { result.Errors.Add($"{dat}.path: {path} is a directory, not a block device or file"); continue; }
                if (!File.Exists(path)) { result.Errors.Add($"{dat}.path: {path} does not exist"); continue; }
                string backend = new BackendSpec(BackendKind.File, path, null).ToString();
                if (!BackendSpec.TryParse(backend, out var parsed, out _) || parsed.Path != path)
                {
                    result.Errors.Add($"{dat}.path: '{path}' ends like a size (':8G'), which EdgeBlock's file:PATH[:SIZE] cannot express; link it under another name");
                    continue;
                }
                if (paths.TryGetValue(path, out string? user)) { result.Errors.Add($"{dat}.path: {path} also backs {user}"); continue; }
                paths[path] = nat;
                if (uuid != null && nguid != null && uuid != nguid)
                    Skip($"{dat}.nguid: {nguid} differs from the uuid {uuid}; EdgeBlock derives the NGUID from the UUID, so hosts will see NGUID {uuid:N}");
                spec.Namespaces.Add(new NamespaceSpec
                {
                    Nsid = nsid,
                    Backend = backend,
                    // No UUID in the file: a name-based one, so a dry run and the import agree.
                    Uuid = uuid ?? nguid ?? NamespaceIdentity.For(spec.Nqn, nsid, "file:" + path),
                });
                backendFields.Add($"{dat}.path");
            }
            result.Add(spec, at, backendFields);
        }
        if (ignoredAttributes.Count > 0)
            result.Warnings.Add($"subsystems[*].attr: {string.Join(", ", ignoredAttributes)} not carried over (EdgeBlock reports its own serial, model and version)");

        // ports
        var linked = new HashSet<string>(StringComparer.Ordinal);
        var partial = new List<string>();
        var addresses = new Dictionary<string, int>(StringComparer.Ordinal);
        int tcpPorts = 0;
        foreach (var (port, i) in Array(root, "ports", "ports", result.Errors))
        {
            string at = $"ports[{i}]";
            if (port.ValueKind != JsonValueKind.Object) { result.Errors.Add($"{at}: is {Describe(port)}, not an object"); continue; }
            if (!port.TryGetProperty("addr", out var addr) || addr.ValueKind != JsonValueKind.Object)
            {
                result.Errors.Add($"{at}.addr: missing (a port needs addr.trtype, addr.traddr, addr.trsvcid)");
                continue;
            }
            string? trtype = String(addr, "trtype", $"{at}.addr", result.Errors, required: true);
            if (trtype == null) continue;
            if (SkippedTransports.Contains(trtype))
            {
                Skip($"{at}: trtype '{trtype}' (traddr '{OptionalString(addr, "traddr")}') is not served by EdgeBlock, which speaks NVMe/TCP only; port skipped");
                continue;
            }
            if (trtype != "tcp") { result.Errors.Add($"{at}.addr.trtype: '{trtype}' is not an NVMe-oF transport (tcp, rdma, fc, loop)"); continue; }
            tcpPorts++;

            string? adrfam = OptionalString(addr, "adrfam");
            string? traddr = String(addr, "traddr", $"{at}.addr", result.Errors, required: true);
            string? trsvcid = String(addr, "trsvcid", $"{at}.addr", result.Errors, required: true);
            if (OptionalString(addr, "tsas") is { Length: > 0 } tsas && tsas != "none")
                result.Errors.Add($"{at}.addr.tsas: '{tsas}': EdgeBlock has no NVMe/TCP TLS yet; importing the port without it would drop the secure channel");
            if (OptionalString(addr, "treq") is { } treq && treq.Contains("required", StringComparison.Ordinal) && !treq.StartsWith("not", StringComparison.Ordinal))
                result.Errors.Add($"{at}.addr.treq: '{treq}': EdgeBlock cannot require a secure channel");
            if (adrfam is not (null or "" or "ipv4" or "ipv6")) { result.Errors.Add($"{at}.addr.adrfam: '{adrfam}' is not ipv4 or ipv6, which tcp needs"); continue; }
            if (traddr == null || trsvcid == null) continue;
            if (!IPAddress.TryParse(traddr, out var ip)) { result.Errors.Add($"{at}.addr.traddr: '{traddr}' is not an IP address"); continue; }
            var family = adrfam == "ipv6" ? AddressFamily.InterNetworkV6 : adrfam == "ipv4" ? AddressFamily.InterNetwork : ip.AddressFamily;
            if (ip.AddressFamily != family) { result.Errors.Add($"{at}.addr.traddr: '{traddr}' is not an {adrfam} address"); continue; }
            if (!int.TryParse(trsvcid, NumberStyles.None, CultureInfo.InvariantCulture, out int tcpPort) || tcpPort > 65535)
            {
                result.Errors.Add($"{at}.addr.trsvcid: '{trsvcid}' is not a TCP port (0..65535)");
                continue;
            }
            string address = new IPEndPoint(ip, tcpPort).ToString();
            if (addresses.TryGetValue(address, out int firstPort)) { result.Errors.Add($"{at}.addr: {address} is also ports[{firstPort}]'s address"); continue; }
            addresses[address] = i;
            result.Add(new ListenerSpec { Address = address }, $"{at}.addr");

            var portSubsystems = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (link, k) in Array(port, "subsystems", $"{at}.subsystems", result.Errors))
            {
                if (link.ValueKind != JsonValueKind.String || !subsystemIndex.ContainsKey(link.GetString()!))
                    result.Errors.Add($"{at}.subsystems[{k}]: {link.GetRawText()} is not one of the file's subsystems");
                else portSubsystems.Add(link.GetString()!);
            }
            linked.UnionWith(portSubsystems);
            if (portSubsystems.Count < subsystemIndex.Count) partial.Add($"{at} ({address})");
            if (port.TryGetProperty("referrals", out var referrals) && referrals.ValueKind == JsonValueKind.Array && referrals.GetArrayLength() > 0)
                result.Warnings.Add($"{at}.referrals: {referrals.GetArrayLength()} discovery referral(s) not carried over (EdgeBlock has no referrals)");
        }
        if (partial.Count > 0)
            result.Warnings.Add($"{string.Join(", ", partial)} exposed only some subsystems; EdgeBlock serves every subsystem on every listener");
        if (tcpPorts > 0)
            foreach (var (nqn, i) in subsystemIndex.Where(kv => !linked.Contains(kv.Key)).OrderBy(kv => kv.Value).Select(kv => (kv.Key, kv.Value)))
                result.Warnings.Add($"subsystems[{i}] ({nqn}) is on no port in the file; EdgeBlock serves it on every listener");
        return result;
    }

    // ---- export ---------------------------------------------------------------------------

    /// <summary>
    /// Writes a desired state as nvmetcli save JSON (keys sorted, as nvmetcli writes them). Namespaces whose
    /// backend is not a file or block device cannot be expressed: they are left out with a warning, or
    /// (strict) reported in <paramref name="errors"/>.
    /// </summary>
    public static JsonObject Write(DesiredState state, string dataDirectory, bool strict, List<string> warnings, List<string> errors)
    {
        var nqns = state.Subsystems.Select(s => s.Nqn).ToList();
        foreach (var v in state.Vhost)
        {
            string message = $"vhost export {v.Socket} ({v.Backend}): the kernel target has no vhost-user transport";
            if (strict) errors.Add(message);
            else warnings.Add(message + "; left out");
        }
        var ports = new JsonArray();
        int portid = 0;
        foreach (var l in state.Listeners)
        {
            portid++;
            if (!ConfigValidator.TryParseEndPoint(l.Address, out var ep, out string why))
            {
                errors.Add($"listener '{l.Address}' {why}");
                continue;
            }
            ports.Add(new JsonObject
            {
                ["addr"] = new JsonObject
                {
                    ["adrfam"] = ep.AddressFamily == AddressFamily.InterNetworkV6 ? "ipv6" : "ipv4",
                    ["traddr"] = ep.Address.ToString(),
                    ["treq"] = "not specified",
                    ["trsvcid"] = ep.Port.ToString(CultureInfo.InvariantCulture),
                    ["trtype"] = "tcp",
                },
                ["portid"] = portid,
                ["referrals"] = new JsonArray(),
                ["subsystems"] = new JsonArray(nqns.Select(n => (JsonNode?)n).ToArray()),
            });
        }

        var subsystems = new JsonArray();
        foreach (var s in state.Subsystems)
        {
            var namespaces = new JsonArray();
            foreach (var ns in s.Namespaces.OrderBy(n => n.Nsid))
            {
                if (!BackendSpec.TryParse(ns.Backend, out var backend, out _) || backend.Kind != BackendKind.File)
                {
                    string message = $"namespace {ns.Nsid} of {s.Nqn}: backend '{ns.Backend}' is not a file or block device, which is all a kernel target can serve";
                    if (strict) errors.Add(message);
                    else warnings.Add(message + "; left out");
                    continue;
                }
                string uuid = (ns.Uuid ?? Guid.Empty).ToString();
                namespaces.Add(new JsonObject
                {
                    ["device"] = new JsonObject
                    {
                        ["nguid"] = uuid, // EdgeBlock's NGUID is the UUID's bytes
                        ["path"] = backend.FullPath(dataDirectory),
                        ["uuid"] = uuid,
                    },
                    ["enable"] = 1,
                    ["nsid"] = ns.Nsid,
                });
            }
            subsystems.Add(new JsonObject
            {
                ["allowed_hosts"] = new JsonArray(s.Hosts.Select(h => (JsonNode?)h).ToArray()),
                ["attr"] = new JsonObject
                {
                    ["allow_any_host"] = s.AllowAnyHost ? "1" : "0",
                    // The serial EdgeBlock reports, so hosts see the same subsystem after the move.
                    ["serial"] = new Target.Subsystem(s.Nqn).SerialNumber,
                },
                ["namespaces"] = namespaces,
                ["nqn"] = s.Nqn,
            });
        }

        var hosts = new JsonArray(state.Subsystems.SelectMany(s => s.Hosts).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)
            .Select(h => (JsonNode?)new JsonObject { ["nqn"] = h }).ToArray());
        return new JsonObject { ["hosts"] = hosts, ["ports"] = ports, ["subsystems"] = subsystems };
    }

    // ---- JSON helpers ---------------------------------------------------------------------

    private static IEnumerable<(JsonElement Item, int Index)> Array(JsonElement parent, string name, string field, List<string> errors)
    {
        if (!parent.TryGetProperty(name, out var array) || array.ValueKind == JsonValueKind.Null) return [];
        if (array.ValueKind != JsonValueKind.Array)
        {
            errors.Add($"{field}: is {Describe(array)}, not an array");
            return [];
        }
        return array.EnumerateArray().Select((e, i) => (e, i)).ToList();
    }

    private static string? String(JsonElement parent, string name, string at, List<string> errors, bool required)
    {
        if (!parent.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            if (required) errors.Add($"{at}.{name}: missing");
            return null;
        }
        if (value.ValueKind != JsonValueKind.String)
        {
            errors.Add($"{at}.{name}: {value.GetRawText()} is not a string");
            return null;
        }
        return value.GetString();
    }

    private static string? OptionalString(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static Guid? Id(JsonElement device, string name, string at, List<string> errors)
    {
        if (String(device, name, at, errors, required: false) is not { } text || text.Length == 0) return null;
        if (!Guid.TryParse(text, out var id)) { errors.Add($"{at}.{name}: '{text}' is not a UUID"); return null; }
        return id == Guid.Empty ? null : id; // nvmet writes all zeroes for "not set"
    }

    /// <summary>configfs flags: "0"/"1" as strings (attr) or numbers (enable); true/false from hand-written files.</summary>
    private static bool? Flag(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Number when value.TryGetInt32(out int n) && n is 0 or 1 => n == 1,
        JsonValueKind.String when value.GetString() is "0" or "1" => value.GetString() == "1",
        _ => null,
    };

    private static long? Unsigned(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Number when value.TryGetInt64(out long n) && n >= 0 => n,
        JsonValueKind.String when long.TryParse(value.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out long n) => n,
        _ => null,
    };

    private static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => $"the string {e.GetRawText()}",
        JsonValueKind.Number => $"the number {e.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => e.GetRawText(),
        JsonValueKind.Null => "null",
        _ => "missing",
    };
}
