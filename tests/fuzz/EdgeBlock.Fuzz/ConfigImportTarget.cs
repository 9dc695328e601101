using System.Text.Json;
using EdgeBlock.Api;
using EdgeBlock.Daemon.Management;
using EdgeBlock.Target;

namespace EdgeBlock.Fuzz;

/// <summary>
/// The configuration importer behind POST /v1/config/import: the input is the document (edgeblock.json or
/// nvmetcli's saveconfig JSON), imported as a dry run through the real <see cref="ManagementService.ImportAsync"/>
/// (format detection, <see cref="EdgeBlockFormat"/> / <see cref="NvmetcliFormat"/>, merge or replace,
/// <see cref="ConfigValidator"/>, the diff) with each format choice and both modes. A dry run changes nothing, so
/// every input meets the same empty daemon. Refusals are what the API answers with problem+json: a
/// <see cref="ManagementException"/> of status 4xx (and, before that, a document that is not JSON, which the web
/// layer refuses). A finding is any other exception or a 5xx: the API would answer 500.
/// </summary>
internal sealed class ConfigImportTarget
{
    private static readonly ConfigImportRequest[] Variants =
    [
        new(default, Format: "auto", DryRun: true),
        new(default, Format: "auto", Replace: true, DryRun: true),
        new(default, Format: NvmetcliFormat.Name, DryRun: true),
        new(default, Format: NvmetcliFormat.Name, DryRun: true, Strict: true),
        new(default, Format: EdgeBlockFormat.Name, Replace: true, DryRun: true),
    ];

    /// <summary>The data directory, with a 1 MiB disk.img that the nvmetcli seeds name (nvmetcli paths must exist).</summary>
    public const string DataDirectory = "/tmp/edgeblock-fuzz-config";

    private readonly ManagementService _service;

    public ConfigImportTarget()
    {
        string data = DataDirectory;
        Directory.CreateDirectory(data);
        using (var disk = new FileStream(Path.Combine(data, "disk.img"), FileMode.OpenOrCreate)) disk.SetLength(1 << 20);
        var logger = new FindingLogger();
        var target = new NvmeTarget(logger);
        var engine = new EdgeBlockEngine(target, data, logger, logger, teardown: new DeviceTeardown(logger));
        _service = new ManagementService(target, engine, new ConfigStore(Path.Combine(data, "edgeblock.json")), data, logger);
    }

    public void Run(ReadOnlySpan<byte> input)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(input.ToArray());
        }
        catch (JsonException)
        {
            return; // the web layer answers 400 before the importer sees it
        }
        using (document)
        {
            foreach (var variant in Variants)
            {
                try
                {
                    var result = _service.ImportAsync(variant with { Document = document.RootElement }).GetAwaiter().GetResult();
                    if (FindingLogger.Verbose) Console.Error.WriteLine($"{variant.Format}: {result.Changes.Count} changes");
                }
                catch (ManagementException ex) when (ex.Status is >= 400 and < 500)
                {
                    // a refusal with a message: problem+json
                    if (FindingLogger.Verbose) Console.Error.WriteLine($"{variant.Format}: {ex.Status} {ex.Message}");
                }
            }
        }
    }
}
