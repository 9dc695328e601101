using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text.Json;

namespace EdgeBlock.Management.Tests;

/// <summary>
/// vhost-user-blk exports through the real daemon and CLI: a volume served on a socket that answers
/// the vhost-user protocol with the volume's size, kept across a restart, refused when it would
/// export a volume twice, and gone (socket file included) when removed.
/// </summary>
public sealed class VhostEndToEndTests
{
    private static void Ok(CliResult r) => Assert.True(r.ExitCode == 0, r.ToString());

    private static void Refused(CliResult r, params string[] mentions)
    {
        Assert.True(r.ExitCode == 2, r.ToString());
        foreach (string m in mentions) Assert.Contains(m, r.Error);
    }

    private static JsonElement Json(CliResult r)
    {
        Ok(r);
        return JsonDocument.Parse(r.Output).RootElement;
    }

    private static async Task<TestDaemon> DaemonWithVolumeAsync()
    {
        var d = await TestDaemon.StartAsync();
        Ok(await d.CliAsync("pool", "create", "p1", $"{Path.Combine(d.Directory, "d0.img")}:64M"));
        Ok(await d.CliAsync("volume", "create", "p1/vm1", "--size", "24M"));
        return d;
    }

    [Fact]
    public async Task VolumeServedOnASocket_AnswersWithItsSizeAndQueues_BackAfterRestart_GoneWhenRemoved()
    {
        await using var d = await DaemonWithVolumeAsync();
        string socket = Path.Combine(d.Directory, "vm1.sock");
        var added = await d.CliAsync("vhost", "add", "--socket", socket, "--volume", "p1/vm1", "--queues", "3");
        Ok(added);
        Assert.Contains("24 MiB", added.Output);

        var list = Json(await d.CliAsync("vhost", "list", "--json"));
        var e = Assert.Single(list.EnumerateArray());
        Assert.Equal(socket, e.GetProperty("socket").GetString());
        Assert.Equal("volume:p1/vm1", e.GetProperty("backend").GetString());
        Assert.Equal("waiting", e.GetProperty("state").GetString());

        using (var probe = VhostProbe.Connect(socket))
        {
            Assert.Equal(24L << 20, probe.CapacityBytes());
            Assert.Equal(3UL, probe.Request(17 /* GET_QUEUE_NUM */));
            Assert.Equal(0UL, probe.Request(1 /* GET_FEATURES */) & 1UL << 5); // not VIRTIO_BLK_F_RO
            await WaitForAsync(async () => Json(await d.CliAsync("vhost", "list", "--json"))[0].GetProperty("state").GetString() == "connected");
            var metrics = new EdgeBlock.Daemon.DaemonMetrics(d.Daemon.Target, d.Daemon.Pools, d.Daemon.Management.VhostExports);
            string text = await metrics.ScrapeAsync();
            Assert.Contains($"edgeblock_vhost_connected{{socket=\"{socket}\"}} 1", text);
            Assert.Contains($"edgeblock_vhost_requests_total{{socket=\"{socket}\"}} 0", text);
        }

        // The volume is exported: a namespace over it, or deleting it, is refused.
        Refused(await d.CliAsync("namespace", "add", "nqn.2026-11.io.edgeblock:default", "--volume", "p1/vm1"), "already exported");
        Refused(await d.CliAsync("volume", "delete", "p1/vm1"), "p1/vm1");

        await d.RestartAsync();
        e = Assert.Single(Json(await d.CliAsync("vhost", "list", "--json")).EnumerateArray());
        Assert.Equal("waiting", e.GetProperty("state").GetString());
        using (var probe = VhostProbe.Connect(socket)) Assert.Equal(24L << 20, probe.CapacityBytes());

        var after = new EdgeBlock.Daemon.DaemonMetrics(d.Daemon.Target, d.Daemon.Pools, d.Daemon.Management.VhostExports);
        Assert.Contains($"edgeblock_vhost_requests_total{{socket=\"{socket}\"}} 0", await after.ScrapeAsync());
        Ok(await d.CliAsync("vhost", "remove", socket));
        Assert.False(File.Exists(socket), "the socket file is removed with the export");
        Assert.DoesNotContain("edgeblock_vhost_requests_total{", await after.ScrapeAsync()); // the removed export's series go
        Assert.Empty(Json(await d.CliAsync("vhost", "list", "--json")).EnumerateArray());
        Ok(await d.CliAsync("volume", "delete", "p1/vm1")); // no longer exported
        await d.RestartAsync();
        Assert.Empty(Json(await d.CliAsync("vhost", "list", "--json")).EnumerateArray());
    }

    [Fact]
    public async Task ReadOnlyExport_OffersTheReadOnlyFeature()
    {
        await using var d = await DaemonWithVolumeAsync();
        string socket = Path.Combine(d.Directory, "ro.sock");
        Ok(await d.CliAsync("vhost", "add", "--socket", socket, "--volume", "p1/vm1", "--read-only"));
        using var probe = VhostProbe.Connect(socket);
        Assert.NotEqual(0UL, probe.Request(1 /* GET_FEATURES */) & 1UL << 5);
    }

    [Fact]
    public async Task Refusals_NameTheProblem_AndChangeNothing()
    {
        await using var d = await DaemonWithVolumeAsync();
        string socket = Path.Combine(d.Directory, "a.sock");
        Refused(await d.CliAsync("vhost", "add", "--socket", socket, "--volume", "p1/nope"), "nope");
        Refused(await d.CliAsync("vhost", "add", "--socket", socket, "--volume", "p9/vm1"), "p9");
        Refused(await d.CliAsync("vhost", "add", "--socket", socket, "--volume", "p1/vm1", "--queues", "0"), "queues");
        Refused(await d.CliAsync("vhost", "add", "--socket", "/" + new string('s', 120), "--volume", "p1/vm1"), "at most 107");
        Refused(await d.CliAsync("vhost", "add", "--socket", "/no/such/dir/x.sock", "--volume", "p1/vm1"), "/no/such/dir");
        Refused(await d.CliAsync("vhost", "remove", socket), "no vhost export");
        string config = await File.ReadAllTextAsync(d.ConfigPath);

        Ok(await d.CliAsync("vhost", "add", "--socket", socket, "--volume", "p1/vm1"));
        Refused(await d.CliAsync("vhost", "add", "--socket", socket, "--backend", "memory:8M"), "already exists");
        Refused(await d.CliAsync("vhost", "add", "--socket", Path.Combine(d.Directory, "b.sock"), "--volume", "p1/vm1"), "already exported");
        Assert.Single(Json(await d.CliAsync("vhost", "list", "--json")).EnumerateArray());
        Assert.False(File.Exists(Path.Combine(d.Directory, "b.sock")));

        // A file that is not a socket is not replaced.
        string plain = Path.Combine(d.Directory, "plain");
        await File.WriteAllTextAsync(plain, "keep me");
        Refused(await d.CliAsync("vhost", "add", "--socket", plain, "--backend", "memory:8M"), "not a socket");
        Assert.Equal("keep me", await File.ReadAllTextAsync(plain));
        // A socket another back-end listens on is refused, and left to it.
        string taken = Path.Combine(d.Directory, "taken.sock");
        using (var other = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            other.Bind(new UnixDomainSocketEndPoint(taken));
            other.Listen();
            Refused(await d.CliAsync("vhost", "add", "--socket", taken, "--backend", "memory:8M"), "Another back-end");
            using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            client.Connect(new UnixDomainSocketEndPoint(taken)); // still there, still the other's
        }
        Ok(await d.CliAsync("vhost", "remove", socket));
        Assert.Equal(config, await File.ReadAllTextAsync(d.ConfigPath));
    }

    [Fact]
    public async Task ConfigExportImport_CarriesVhostExports_ReplaceStopsThem_NvmetcliWarns()
    {
        await using var d = await DaemonWithVolumeAsync();
        string socket = Path.Combine(d.Directory, "vm1.sock");
        Ok(await d.CliAsync("vhost", "add", "--socket", socket, "--volume", "p1/vm1", "--queues", "2"));
        string exported = Path.Combine(d.Directory, "export.json");
        Ok(await d.CliAsync("config", "export", "-o", exported));
        var vhost = Assert.Single(JsonDocument.Parse(await File.ReadAllTextAsync(exported)).RootElement.GetProperty("vhost").EnumerateArray());
        Assert.Equal(socket, vhost.GetProperty("socket").GetString());
        Assert.Equal(2, vhost.GetProperty("queues").GetInt32());

        var nvmetcli = await d.CliAsync("config", "export", "--format", "nvmetcli");
        Ok(nvmetcli);
        Assert.Contains("no vhost-user transport", nvmetcli.Error);

        // The same file again: its export already runs here.
        Refused(await d.CliAsync("config", "import", exported), "already served");
        // Replace with a state without it: the export stops and its socket goes.
        string empty = Path.Combine(d.Directory, "empty.json");
        await File.WriteAllTextAsync(empty, "{ \"version\": 1, \"listeners\": [], \"subsystems\": [] }");
        var replaced = await d.CliAsync("config", "import", empty, "--replace");
        Ok(replaced);
        Assert.Contains($"- vhost {socket}", replaced.Output);
        Assert.False(File.Exists(socket));
        // And back: a merge import starts it again.
        Ok(await d.CliAsync("config", "import", exported));
        using var probe = VhostProbe.Connect(socket);
        Assert.Equal(24L << 20, probe.CapacityBytes());
    }

    [Fact]
    public async Task BrokenFrontEnd_LosesOnlyItsConnection_OtherExportsAndTheDaemonGoOn()
    {
        await using var d = await DaemonWithVolumeAsync();
        Ok(await d.CliAsync("volume", "create", "p1/vm2", "--size", "8M"));
        string bad = Path.Combine(d.Directory, "bad.sock"), good = Path.Combine(d.Directory, "good.sock");
        Ok(await d.CliAsync("vhost", "add", "--socket", bad, "--volume", "p1/vm1"));
        Ok(await d.CliAsync("vhost", "add", "--socket", good, "--volume", "p1/vm2"));
        using var healthy = VhostProbe.Connect(good);
        Assert.Equal(8L << 20, healthy.CapacityBytes());

        // A header announcing a payload far beyond the protocol's limit, then one of a protocol version nobody speaks.
        foreach (byte[] garbage in new[] { Header(24, 1, 1 << 30), Header(1, 2, 0) })
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = 5000 };
            s.Connect(new UnixDomainSocketEndPoint(bad));
            s.Send(garbage);
            Assert.Equal(0, s.Receive(new byte[64])); // the back-end closes this connection
        }

        Assert.Equal(8L << 20, healthy.CapacityBytes()); // the other VM's session is untouched
        using (var again = VhostProbe.Connect(bad)) Assert.Equal(24L << 20, again.CapacityBytes()); // and the broken one's socket serves the next
        var list = Json(await d.CliAsync("vhost", "list", "--json"));
        Assert.Contains(list.EnumerateArray(), e => e.GetProperty("socket").GetString() == bad && e.GetProperty("last_disconnect_reason").GetString() is { Length: > 0 });
    }

    private static byte[] Header(uint request, uint flags, uint size)
    {
        var h = new byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(h, request);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(8), size);
        return h;
    }

    [Fact]
    public async Task HandEditedConfig_ConfigReload_ServesTheNewExport_ABadEditIsRefusedWhole()
    {
        await using var d = await DaemonWithVolumeAsync();
        var state = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(d.ConfigPath))!.AsObject();
        state["vhost"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject
        {
            ["socket"] = "vhost/vm1.sock", // relative: under the data directory (created)
            ["backend"] = "volume:p1/vm1",
            ["queues"] = 99,
        });
        await File.WriteAllTextAsync(d.ConfigPath, state.ToJsonString());
        Refused(await d.CliAsync("config", "reload"), "vhost[0].queues", "99");
        Assert.Empty(Json(await d.CliAsync("vhost", "list", "--json")).EnumerateArray());

        state["vhost"]![0]!["queues"] = 2;
        await File.WriteAllTextAsync(d.ConfigPath, state.ToJsonString());
        var reloaded = await d.CliAsync("config", "reload");
        Ok(reloaded);
        string socket = Path.Combine(d.Directory, "vhost", "vm1.sock");
        Assert.Contains($"+ vhost {socket}", reloaded.Output);
        using var probe = VhostProbe.Connect(socket);
        Assert.Equal(2UL, probe.Request(17 /* GET_QUEUE_NUM */));
        Assert.Contains("nothing to change", (await d.CliAsync("config", "reload")).Output);
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        for (int i = 0; i < 100 && !await condition(); i++) await Task.Delay(50);
        Assert.True(await condition(), "condition not reached within 5 s");
    }

    /// <summary>The front-end's first questions (no memory shared): enough to see what an export serves.</summary>
    private sealed class VhostProbe : IDisposable
    {
        private readonly Socket _socket;

        private VhostProbe(Socket socket) => _socket = socket;

        public static VhostProbe Connect(string path)
        {
            var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = 5000 };
            s.Connect(new UnixDomainSocketEndPoint(path));
            return new VhostProbe(s);
        }

        public ulong Request(uint request) => BinaryPrimitives.ReadUInt64LittleEndian(Exchange(request, []));

        /// <summary>GET_CONFIG: virtio-blk's capacity field, in 512-byte sectors.</summary>
        public long CapacityBytes()
        {
            var payload = new byte[12 + 8];
            BinaryPrimitives.WriteUInt32LittleEndian(payload.AsSpan(4), 8); // offset 0, size 8, flags 0
            return (long)BinaryPrimitives.ReadUInt64LittleEndian(Exchange(24, payload).AsSpan(12)) * 512;
        }

        private byte[] Exchange(uint request, byte[] payload)
        {
            var message = new byte[12 + payload.Length];
            BinaryPrimitives.WriteUInt32LittleEndian(message, request);
            BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(4), 1); // version 1
            BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(8), (uint)payload.Length);
            payload.CopyTo(message, 12);
            _socket.Send(message);
            var header = Receive(12);
            Assert.Equal(request, BinaryPrimitives.ReadUInt32LittleEndian(header));
            Assert.Equal(0x5u, BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4))); // version 1 + reply
            return Receive((int)BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8)));
        }

        private byte[] Receive(int count)
        {
            var buffer = new byte[count];
            for (int done = 0; done < count;)
            {
                int n = _socket.Receive(buffer, done, count - done, SocketFlags.None);
                if (n == 0) throw new IOException("the back-end closed the connection");
                done += n;
            }
            return buffer;
        }

        public void Dispose() => _socket.Dispose();
    }
}
