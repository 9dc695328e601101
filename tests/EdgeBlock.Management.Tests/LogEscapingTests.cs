using System.Collections.Concurrent;
using System.Diagnostics;
using EdgeBlock.Cli;
using EdgeBlock.Initiator;

namespace EdgeBlock.Management.Tests;

/// <summary>What users type and what hosts send reaches `serve`'s real console log escaped, never raw.</summary>
public sealed class LogEscapingTests : IDisposable
{
    // A forged log line, a terminal escape sequence (red) and a right-to-left override.
    private const string Hostile = "\n[fake] ERROR \x1b[31mred\u202e";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ebl-" + Guid.NewGuid().ToString("N")[..12]);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task Log_ApiNameAndConnectHostNqnWithControlCharacters_AreEscaped()
    {
        var log = new ConcurrentQueue<string>();
        using var serve = await ServeProcess.StartAsync(_dir, log);
        try
        {
            using var api = new ApiClient(Path.Combine(_dir, "api.sock"));
            // The API decides whether such a file name is acceptable; if it is, its log line must be escaped.
            bool accepted = true;
            try
            {
                await api.SendAsync(HttpMethod.Post, "v1/subsystems/nqn.2026-11.io.edgeblock:default/namespaces", new { backend = $"file:evil{Hostile}.img:1M" });
            }
            catch (DaemonRefusedException) { accepted = false; }
            int port = int.Parse(log.Select(l => l.Split("NVMe/TCP listening on 127.0.0.1:")).First(p => p.Length == 2)[1]);
            var connect = await NvmeHost.ConnectAsync("127.0.0.1", port, "nqn.2026-11.io.edgeblock:none", $"nqn.2014-08.org.nvmexpress:uuid:x{Hostile}");
            Assert.False(connect.IsSuccess);

            var waited = Stopwatch.StartNew();
            while (!log.Any(l => l.Contains("connect refused", StringComparison.Ordinal)) && waited.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(50);

            string all = string.Join("\n", log);
            Assert.Contains(@"uuid:x\n[fake] ERROR \x1b[31mred\u202e", all);
            if (accepted) Assert.Contains(@"file:evil\n[fake] ERROR \x1b[31mred\u202e.img:1M", all);
            Assert.DoesNotContain(log, l => l.StartsWith("[fake]", StringComparison.Ordinal));
            Assert.DoesNotContain(log, l => l.Any(c => char.IsControl(c) || c == '\u202e'));
        }
        finally
        {
            serve.Kill();
            await serve.WaitForExitAsync();
        }
    }
}
