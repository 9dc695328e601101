using System.Runtime.InteropServices;
using System.Text;

namespace EdgeBlock.Daemon.KernelEngine;

/// <summary>
/// The file operations the kernel engine does under the nvmet configfs root. configfs turns
/// them into target changes: mkdir creates an object (and its default groups and attribute
/// files), rmdir removes it, a write sets an attribute, a symlink connects two objects.
/// Tests put a fake tree behind this interface.
/// </summary>
public interface IConfigfs
{
    /// <summary>A directory (not a symlink to one) exists at <paramref name="path"/>.</summary>
    bool DirectoryExists(string path);
    /// <summary>A symlink exists at <paramref name="path"/>.</summary>
    bool LinkExists(string path);
    /// <summary>Names of the entries of a directory (empty when it does not exist).</summary>
    IReadOnlyList<string> List(string directory);
    /// <summary>An attribute's value without the trailing newline; null when there is no such attribute.</summary>
    string? Read(string path);
    void Write(string path, string value);
    void MakeDirectory(string path);
    /// <summary>rmdir, never a recursive delete: configfs removes an object only when its user-made children are gone.</summary>
    void RemoveDirectory(string path);
    void Link(string target, string link);
    void Unlink(string link);
}

/// <summary>A configfs operation the kernel (or the file system) refused.</summary>
public sealed class ConfigfsException(string operation, string path, int errno)
    : IOException($"{operation} {path}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})")
{
    public string Operation { get; } = operation;
    public string PathName { get; } = path;
    public int Errno { get; } = errno;
}

/// <summary>The real thing: plain system calls, so each refusal carries the kernel's errno.</summary>
public sealed partial class Configfs : IConfigfs
{
    private const string Libc = "libc";
    private const int O_WRONLY = 1;
    private const int O_CLOEXEC = 0x80000;

    public bool DirectoryExists(string path) => Directory.Exists(path) && new DirectoryInfo(path).LinkTarget == null;

    public bool LinkExists(string path) => new FileInfo(path).LinkTarget != null;

    public IReadOnlyList<string> List(string directory) =>
        Directory.Exists(directory) ? Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).Select(n => n!).Order(StringComparer.Ordinal).ToList() : [];

    public string? Read(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            return File.ReadAllText(path).TrimEnd('\n');
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ConfigfsException("read", path, ex.HResult is > 0 and < 4096 ? ex.HResult : 5 /* EIO */);
        }
    }

    /// <summary>One write(2) of the whole value at offset 0, as configfs expects.</summary>
    public void Write(string path, string value)
    {
        int fd = Open(path, O_WRONLY | O_CLOEXEC, 0);
        if (fd < 0) throw new ConfigfsException("open", path, Marshal.GetLastPInvokeError());
        try
        {
            byte[] bytes = Encoding.UTF8.GetBytes(value + "\n");
            nint written = WriteRaw(fd, bytes, (nuint)bytes.Length);
            if (written < 0) throw new ConfigfsException($"write '{value}' to", path, Marshal.GetLastPInvokeError());
            if (written != bytes.Length) throw new ConfigfsException($"write '{value}' to", path, 5 /* EIO: short write */);
        }
        finally
        {
            Close(fd);
        }
    }

    public void MakeDirectory(string path)
    {
        if (Mkdir(path, 0x1ED /* 0755 */) != 0) throw new ConfigfsException("mkdir", path, Marshal.GetLastPInvokeError());
    }

    public void RemoveDirectory(string path)
    {
        if (Rmdir(path) != 0) throw new ConfigfsException("rmdir", path, Marshal.GetLastPInvokeError());
    }

    public void Link(string target, string link)
    {
        if (Symlink(target, link) != 0) throw new ConfigfsException($"symlink {target} as", link, Marshal.GetLastPInvokeError());
    }

    public void Unlink(string link)
    {
        if (UnlinkRaw(link) != 0) throw new ConfigfsException("unlink", link, Marshal.GetLastPInvokeError());
    }

    [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport(Libc, EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteRaw(int fd, byte[] buffer, nuint count);

    [LibraryImport(Libc, EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport(Libc, EntryPoint = "mkdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Mkdir(string path, int mode);

    [LibraryImport(Libc, EntryPoint = "rmdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Rmdir(string path);

    [LibraryImport(Libc, EntryPoint = "symlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Symlink(string target, string link);

    [LibraryImport(Libc, EntryPoint = "unlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UnlinkRaw(string path);

    [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenForProbe(string path, int flags);

    /// <summary>
    /// Whether a regular file can be opened with O_DIRECT (nvmet's file backend does so unless
    /// buffered_io is set; tmpfs before Linux 6.6 refuses it with EINVAL).
    /// </summary>
    public static bool SupportsDirectIo(string path)
    {
        int oDirect = RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x10000 : 0x4000;
        int fd = OpenForProbe(path, 0 /* O_RDONLY */ | oDirect | O_CLOEXEC);
        if (fd < 0) return Marshal.GetLastPInvokeError() != 22; // EINVAL: no O_DIRECT here; other errors show at enable
        Close(fd);
        return true;
    }
}
