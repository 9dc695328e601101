using System.Text.Json;

namespace EdgeBlock.Daemon.Management;

/// <summary>Reads and writes the config file; writes are atomic (temp file, fsync, rename, fsync of the directory).</summary>
public sealed class ConfigStore(string path)
{
    public string Path { get; } = System.IO.Path.GetFullPath(path);

    public bool Exists => File.Exists(Path);

    /// <summary>Reads the file; a syntax error or an unknown field throws naming the file, the place and why.</summary>
    public DesiredState Load()
    {
        byte[] bytes = File.ReadAllBytes(Path);
        try
        {
            return JsonSerializer.Deserialize<DesiredState>(bytes, ConfigJson.Options)
                ?? throw ManagementException.Invalid($"config {Path}: the file is empty (null)");
        }
        catch (JsonException ex)
        {
            throw ManagementException.Invalid($"config {Path}: {(ex.Path is { Length: > 0 } p ? $"at {p}: " : "")}{ex.Message}");
        }
    }

    public void Save(DesiredState state)
    {
        string dir = System.IO.Path.GetDirectoryName(Path)!;
        Directory.CreateDirectory(dir);
        string temp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(Path)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                JsonSerializer.Serialize(stream, state, ConfigJson.Options);
                stream.WriteByte((byte)'\n');
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, Path, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
        SyncDirectory(dir);
    }

    private static void SyncDirectory(string dir)
    {
        // The rename is durable once the directory is synced; best effort where a directory cannot be opened.
        try
        {
            using var handle = File.OpenHandle(dir, FileMode.Open, FileAccess.Read);
            RandomAccess.FlushToDisk(handle);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }
}
