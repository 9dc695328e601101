namespace EdgeBlock.Storage.Tests.Support;

/// <summary>
/// The file systems file-backed tests run on, by short name: the temp directory, the file
/// system the repository (and so the test binaries) live on, and tmpfs.
/// </summary>
public static class FileSystems
{
    public const string Temp = "temp";
    public const string Repository = "repository";
    public const string Tmpfs = "tmpfs";

    private const string TmpfsRoot = "/dev/shm";

    /// <summary>Real (disk-backed) file systems, where O_DIRECT must work.</summary>
    public static TheoryData<string> OnDisk => [Temp, Repository];

    public static TheoryData<string> All => Directory.Exists(TmpfsRoot) ? [Temp, Repository, Tmpfs] : [Temp, Repository];

    public static TempDirectory CreateTempDirectory(string fileSystem) => new(fileSystem switch
    {
        Temp => Path.GetTempPath(),
        Repository => AppContext.BaseDirectory,
        Tmpfs => TmpfsRoot,
        _ => throw new ArgumentOutOfRangeException(nameof(fileSystem), fileSystem, "Unknown file system name."),
    });
}
