using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace EdgeBlock.Volumes;

/// <summary>
/// Where an encrypted volume's key comes from: a file of 64 random bytes readable by its owner
/// only, or a command that prints the key (how a TPM-sealed key gets in). The source is kept
/// with the volume so the key can be fetched again at every start; the key itself never is.
/// </summary>
public sealed record VolumeKeySource(string? File = null, string? Command = null)
{
    public override string ToString() => File is not null ? $"key file {File}" : $"key command '{Command}'";
}

/// <summary>An encrypted volume's key source and its key check value (proves a key right without storing it).</summary>
internal sealed record VolumeEncryption(VolumeKeySource Source, string Check);

/// <summary>Loads keys from their sources and checks them. Every refusal says what is wrong and what to do.</summary>
public static class VolumeKeys
{
    public const int KeySize = XtsAes.KeySize;
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The key of a source; a VolumeException (Invalid) names the problem.</summary>
    public static byte[] Load(VolumeKeySource source, string volume)
    {
        if ((source.File is null) == (source.Command is null))
        {
            throw new VolumeException(VolumeError.Invalid, $"volume {volume}: give one key source, --key-file PATH or --key-command CMD");
        }
        return source.File is { } file ? FromFile(file, volume) : FromCommand(source.Command!, volume);
    }

    private static byte[] FromFile(string path, string volume)
    {
        if (!Path.IsPathFullyQualified(path)) throw new VolumeException(VolumeError.Invalid, $"volume {volume}: key file '{path}' must be an absolute path");
        var info = new FileInfo(path);
        if (!info.Exists) throw new VolumeException(VolumeError.Invalid, $"volume {volume}: key file {path} does not exist");
        if (info.LinkTarget is not null || (info.Attributes & FileAttributes.Directory) != 0)
        {
            throw new VolumeException(VolumeError.Invalid, $"volume {volume}: key file {path} must be a regular file, not a link or directory");
        }
        UnixFileMode mode = info.UnixFileMode;
        const UnixFileMode others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        if ((mode & others) != 0)
        {
            throw new VolumeException(VolumeError.Invalid, $"volume {volume}: key file {path} has mode {Convert.ToString((int)mode, 8).PadLeft(4, '0')}; a key must be readable by its owner only (chmod 600 {path})");
        }
        if (info.Length != KeySize)
        {
            throw new VolumeException(VolumeError.Invalid, $"volume {volume}: key file {path} holds {info.Length} bytes; a key is {KeySize} random bytes (head -c {KeySize} /dev/urandom > FILE)");
        }
        try
        {
            return System.IO.File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VolumeException(VolumeError.Invalid, $"volume {volume}: key file {path} cannot be read: {e.Message}", e);
        }
    }

    /// <summary>Runs the command with /bin/sh; its stdout is the key: 64 bytes, or 128 hex digits (a newline may follow).</summary>
    private static byte[] FromCommand(string command, string volume)
    {
        var start = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        using var process = new Process { StartInfo = start };
        try
        {
            process.Start();
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new VolumeException(VolumeError.Invalid, $"volume {volume}: key command could not start: {e.Message}", e);
        }
        using var stdout = new MemoryStream();
        Task copy = process.StandardOutput.BaseStream.CopyToAsync(stdout);
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(CommandTimeout))
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            throw new VolumeException(VolumeError.Invalid, $"volume {volume}: key command did not finish within {CommandTimeout.TotalSeconds:F0} s");
        }
        copy.Wait(CommandTimeout);
        if (process.ExitCode != 0)
        {
            string why = stderr.Wait(TimeSpan.FromSeconds(1)) ? stderr.Result.Trim() : "";
            if (why.Length > 200) why = why[..200] + "…";
            throw new VolumeException(VolumeError.Invalid, $"volume {volume}: key command exited with status {process.ExitCode}{(why.Length > 0 ? $": {why}" : "")}");
        }
        byte[] output = stdout.ToArray();
        try
        {
            if (output.Length == KeySize) return output;
            string text = Encoding.ASCII.GetString(output).TrimEnd('\n', '\r');
            if (text.Length == 2 * KeySize && text.All(Uri.IsHexDigit)) return Convert.FromHexString(text);
            throw new VolumeException(VolumeError.Invalid, $"volume {volume}: key command printed {output.Length} bytes; it must print the {KeySize}-byte key (raw, or as {2 * KeySize} hex digits)");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(output);
        }
    }

    /// <summary>The key check value: an HMAC of a fixed label under the key; shows a key is the right one and nothing else.</summary>
    public static string Check(ReadOnlySpan<byte> key)
    {
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(key, "EdgeBlock volume key check v1"u8, mac);
        return Convert.ToHexStringLower(mac[..16]);
    }
}
