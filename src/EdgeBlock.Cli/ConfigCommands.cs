using System.CommandLine;
using System.Text;
using System.Text.Json;
using EdgeBlock.Api;

namespace EdgeBlock.Cli;

/// <summary>
/// `edgeblock config import FILE` and `edgeblock config export`: a whole configuration in and out, as
/// Linux `nvmetcli save` JSON (kernel target setups move over and back) or EdgeBlock's own desired state.
/// Exit codes as the other management commands: 0 ok, 1 usage (or an unreadable file), 2 refused, 3 no daemon.
/// </summary>
public static class ConfigCommands
{
    private const int ExitUsage = 1;

    /// <summary>Adds `config` to a root that already has the management commands (their --api-socket option).</summary>
    public static void AddTo(RootCommand root)
    {
        var socket = root.Options.OfType<Option<string?>>().First(o => o.Name == "--api-socket");
        var group = new Command("config", "The whole configuration: import a file (nvmetcli save JSON or EdgeBlock's own), export it");
        group.Subcommands.Add(Import(socket));
        group.Subcommands.Add(Export(socket));
        group.Subcommands.Add(Reload(socket));
        root.Subcommands.Add(group);
    }

    private static Command Import(Option<string?> socket)
    {
        var file = new Argument<string>("FILE") { Description = "The JSON to import: what `nvmetcli save` wrote (/etc/nvmet/config.json), or an `edgeblock config export`" };
        var format = new Option<string>("--format")
        {
            Description = "auto (default: told apart by the top-level fields) | nvmetcli | edgeblock",
            DefaultValueFactory = _ => "auto",
        };
        format.AcceptOnlyFromAmong("auto", ConfigFormats.Nvmetcli, ConfigFormats.EdgeBlock);
        var replace = new Option<bool>("--replace")
        {
            Description = "Make the file the whole configuration (listeners, subsystems and namespaces not in it are removed; unchanged ones keep running). "
                          + "Default: merge it in, refusing subsystems that already exist",
        };
        var dryRun = new Option<bool>("--dry-run") { Description = "Check everything and print what would change; change nothing" };
        var strict = new Option<bool>("--strict") { Description = "Refuse the file when something in it cannot be carried over (non-TCP ports, disabled namespaces, ...) instead of skipping it with a warning" };
        var json = new Option<bool>("--json") { Description = "Print the API's JSON answer" };
        var force = new Option<bool>("--force") { Description = "Export block devices even if they carry a file system or partition signature" };
        var command = new Command("import", "Apply a configuration file as one change: all of it is checked first, and a refusal changes nothing")
        {
            file, format, replace, dryRun, strict, json, force,
        };
        SetAction(command, socket, async (api, parse, output, error) =>
        {
            string path = parse.GetValue(file)!;
            JsonElement document;
            try
            {
                using var doc = JsonDocument.Parse(await File.ReadAllBytesAsync(path), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
                document = doc.RootElement.Clone();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                error.WriteLine($"edgeblock: cannot read {path}: {ex.Message}");
                return ExitUsage;
            }
            catch (JsonException ex)
            {
                error.WriteLine($"edgeblock: {path} is not JSON: {ex.Message}");
                return ExitUsage;
            }
            var request = new ConfigImportRequest(document, parse.GetValue(format), parse.GetValue(replace), parse.GetValue(dryRun), parse.GetValue(strict),
                parse.GetValue(force));
            string body = await api.SendAsync(HttpMethod.Post, "v1/config/import", request);
            var result = ApiClient.Parse<ConfigImportResult>(body);
            foreach (string w in result.Warnings) error.WriteLine($"edgeblock: warning: {w}");
            if (parse.GetValue(json)) { output.WriteLine(body); return 0; }
            if (result.Changes.Count == 0)
            {
                output.WriteLine($"{path} ({result.Format}): nothing to change");
                return 0;
            }
            output.WriteLine(result.Applied ? $"imported {path} ({result.Format}):" : $"dry run: importing {path} ({result.Format}) would make these changes:");
            foreach (string c in result.Changes) output.WriteLine($"  {c}");
            return 0;
        });
        return command;
    }

    private static Command Export(Option<string?> socket)
    {
        var format = new Option<string>("--format")
        {
            Description = "edgeblock (default: the desired state file's JSON) | nvmetcli (what `nvmetcli restore` reads)",
            DefaultValueFactory = _ => ConfigFormats.EdgeBlock,
        };
        format.AcceptOnlyFromAmong(ConfigFormats.EdgeBlock, ConfigFormats.Nvmetcli);
        var outputFile = new Option<string?>("--output", "-o") { Description = "Write to this file instead of standard output" };
        var strict = new Option<bool>("--strict") { Description = "Refuse when something cannot be expressed (a null or memory backend in nvmetcli format) instead of leaving it out with a warning" };
        var command = new Command("export", "Print (or write) the whole configuration") { format, outputFile, strict };
        SetAction(command, socket, async (api, parse, output, error) =>
        {
            string query = $"v1/config?format={Uri.EscapeDataString(parse.GetValue(format)!)}&strict={(parse.GetValue(strict) ? "true" : "false")}";
            var result = ApiClient.Parse<ConfigExportResult>(await api.SendAsync(HttpMethod.Get, query));
            foreach (string w in result.Warnings) error.WriteLine($"edgeblock: warning: {w}");
            string text = JsonSerializer.Serialize(result.Document, Indented) + "\n";
            if (parse.GetValue(outputFile) is { Length: > 0 } path)
            {
                try
                {
                    string full = Path.GetFullPath(path);
                    string temp = full + ".tmp";
                    await File.WriteAllTextAsync(temp, text, new UTF8Encoding(false));
                    File.Move(temp, full, overwrite: true);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    error.WriteLine($"edgeblock: cannot write {path}: {ex.Message}");
                    return ExitUsage;
                }
                output.WriteLine($"wrote {path} ({result.Format})");
            }
            else
            {
                output.Write(text);
            }
            return 0;
        });
        return command;
    }

    private static Command Reload(Option<string?> socket)
    {
        var json = new Option<bool>("--json") { Description = "Print the API's JSON answer" };
        var command = new Command("reload", "Re-read the config file after editing it by hand (as SIGHUP does): applied as one change, or refused whole naming the field") { json };
        SetAction(command, socket, async (api, parse, output, error) =>
        {
            string body = await api.SendAsync(HttpMethod.Post, "v1/config/reload");
            if (parse.GetValue(json)) { output.WriteLine(body); return 0; }
            var result = ApiClient.Parse<ConfigReloadResult>(body);
            output.WriteLine(result.Changes.Count == 0 ? $"{result.ConfigPath}: nothing to change" : $"{result.ConfigPath} applied:");
            foreach (string change in result.Changes) output.WriteLine($"  {change}");
            return 0;
        });
        return command;
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private static void SetAction(Command command, Option<string?> socket, Func<ApiClient, ParseResult, TextWriter, TextWriter, Task<int>> action) =>
        ApiAction.Set(command, socket, call => action(call.Api, call.Parse, call.Out, call.Error));
}
