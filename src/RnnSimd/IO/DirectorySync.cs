using System.Runtime.InteropServices;

namespace RnnSimd.IO;

/// <summary>
/// Makes a rename durable: after <c>rename(2)</c> the new directory entry lives in the directory's page cache until the
/// directory itself is fsynced, so a power loss could bring back the old file (or none). On Linux this opens the
/// directory and calls <c>fsync(2)</c> on it; elsewhere it does nothing.
/// </summary>
internal static partial class DirectorySync
{
    private const int O_RDONLY = 0, O_DIRECTORY = 0x10000, O_CLOEXEC = 0x80000; // Linux x86-64 / arm64 values

    /// <summary>Flushes <paramref name="directory"/>'s entries to disk (Linux).</summary>
    /// <exception cref="IOException">fsync failed (the rename may not be durable).</exception>
    public static void Flush(string directory)
    {
        if (!OperatingSystem.IsLinux()) return;
        int fd = Open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return; // a directory we may write but not open for reading: nothing more can be done
        try
        {
            if (Fsync(fd) != 0)
                throw new IOException($"fsync of directory {directory} failed (errno {Marshal.GetLastPInvokeError()}); the new file may not be durable.");
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
