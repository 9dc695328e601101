using System.CommandLine;
using EdgeBlock.Api;

namespace EdgeBlock.Cli;

/// <summary>
/// The DH-HMAC-CHAP options of add-host and set-host-secret. Secrets come from a file or stdin ("-"),
/// never from argv (which every local user can read in /proc).
/// </summary>
internal sealed class HostSecretOptions
{
    public Option<string?> SecretFile { get; } = new("--dhchap-secret-file")
    { Description = "File holding the host's DH-HMAC-CHAP secret (DHHC-1:XX:...: as nvme gen-dhchap-key prints it); - reads stdin" };
    public Option<string?> CtrlSecretFile { get; } = new("--dhchap-ctrl-secret-file")
    { Description = "File holding the controller's secret, for bidirectional authentication (nvme connect --dhchap-ctrl-secret); - reads stdin" };
    public Option<string?> Hash { get; } = new("--dhchap-hash") { Description = "sha256 (default), sha384 or sha512" };
    public Option<string?> DhGroup { get; } = new("--dhchap-dhgroup") { Description = "null (default), ffdhe2048, ffdhe3072, ffdhe4096, ffdhe6144 or ffdhe8192" };

    public void AddTo(Command command)
    {
        command.Options.Add(SecretFile);
        command.Options.Add(CtrlSecretFile);
        command.Options.Add(Hash);
        command.Options.Add(DhGroup);
    }

    /// <summary>The request, or null when no secret file was given (then the other options must not be either).</summary>
    public SetHostAuthRequest? Read(ParseResult parse)
    {
        string? secretFile = parse.GetValue(SecretFile), ctrlFile = parse.GetValue(CtrlSecretFile);
        if (secretFile == null)
        {
            if (ctrlFile != null || parse.GetValue(Hash) != null || parse.GetValue(DhGroup) != null)
                throw Refused("--dhchap-ctrl-secret-file, --dhchap-hash and --dhchap-dhgroup need --dhchap-secret-file");
            return null;
        }
        if (secretFile == "-" && ctrlFile == "-") throw Refused("only one of the secrets can come from stdin");
        return new SetHostAuthRequest(ReadSecret(secretFile, "--dhchap-secret-file"), ctrlFile == null ? null : ReadSecret(ctrlFile, "--dhchap-ctrl-secret-file"),
            parse.GetValue(Hash), parse.GetValue(DhGroup));
    }

    private static string ReadSecret(string path, string option)
    {
        try
        {
            string text = path == "-" ? Console.In.ReadToEnd() : File.ReadAllText(path);
            return text.Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Refused($"{option} {path}: {ex.Message}");
        }
    }

    private static DaemonRefusedException Refused(string detail) => new(400, "bad DH-HMAC-CHAP option", detail);
}
