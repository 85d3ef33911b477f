using System.Text.Json;

namespace SleapRtc.Client.Credentials;

/// <summary>Room credentials remembered on this machine (saved by New-SleapRoom and Start-SleapWorker).</summary>
public sealed class RoomCredentials
{
    public string RoomId { get; set; } = "";
    public string Token { get; set; } = "";
    public string? Server { get; set; }
    public string? Name { get; set; }
    public DateTimeOffset? ExpiresAt { get; set; }
    public DateTimeOffset SavedAt { get; set; }

    public override string ToString() => RoomId;
}

/// <summary>
/// Saved room credentials in one JSON file under the user's data directory, readable by the user only
/// (file mode 0600, folder 0700 on Unix; the profile's ACL on Windows). Writes are atomic (temp file + rename)
/// so a crash never leaves half a file, and serialized across processes by an exclusive lock file.
/// </summary>
public sealed class CredentialStore
{
    public const string FileName = "credentials.json";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };
    private readonly object _gate = new();

    public CredentialStore(string? directory = null)
    {
        Directory = directory ?? DefaultDirectory;
    }

    /// <summary>&lt;LocalApplicationData&gt;/SleapRtc (on Linux $XDG_DATA_HOME or ~/.local/share).</summary>
    public static string DefaultDirectory =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify), "SleapRtc");

    public string Directory { get; }
    public string FilePath => Path.Combine(Directory, FileName);

    public void Save(RoomCredentials credentials)
    {
        if (string.IsNullOrWhiteSpace(credentials.RoomId)) throw new ArgumentException("A room id is required.", nameof(credentials));
        if (string.IsNullOrEmpty(credentials.Token)) throw new ArgumentException("A room token is required.", nameof(credentials));
        Update(rooms =>
        {
            credentials.SavedAt = DateTimeOffset.UtcNow;
            rooms.RemoveAll(r => r.RoomId == credentials.RoomId);
            rooms.Add(credentials);
        });
    }

    public RoomCredentials? Get(string roomId) => List().FirstOrDefault(r => r.RoomId == roomId);

    public IReadOnlyList<RoomCredentials> List()
    {
        lock (_gate) return Read();
    }

    /// <returns>True when the room was saved and is now removed.</returns>
    public bool Remove(string roomId)
    {
        var removed = false;
        Update(rooms => removed = rooms.RemoveAll(r => r.RoomId == roomId) > 0);
        return removed;
    }

    private void Update(Action<List<RoomCredentials>> change)
    {
        lock (_gate)
        {
            EnsurePrivateDirectory();
            using var lockFile = AcquireFileLock();
            var rooms = Read();
            change(rooms);
            var temp = FilePath + "." + Guid.NewGuid().ToString("N") + ".tmp";
            using (var stream = CreatePrivateFile(temp))
                JsonSerializer.Serialize(stream, rooms, Json);
            File.Move(temp, FilePath, overwrite: true);
        }
    }

    private List<RoomCredentials> Read()
    {
        if (!File.Exists(FilePath)) return new List<RoomCredentials>();
        try
        {
            using var stream = new FileStream(FilePath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return JsonSerializer.Deserialize<List<RoomCredentials>>(stream, Json) ?? new List<RoomCredentials>();
        }
        catch (JsonException)
        {
            // A damaged file must not lock the user out; the next save rewrites it.
            return new List<RoomCredentials>();
        }
    }

    private static FileStream CreatePrivateFile(string path)
    {
#if NET8_0_OR_GREATER
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        return new FileStream(path, options);
#else
        // Windows PowerShell 5.1: the file inherits the ACL of the user's profile folder, readable by the user only.
        return new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
#endif
    }

    private void EnsurePrivateDirectory()
    {
#if NET8_0_OR_GREATER
        if (!OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            return;
        }
#endif
        System.IO.Directory.CreateDirectory(Directory);
    }

    private FileStream AcquireFileLock()
    {
        var path = Path.Combine(Directory, FileName + ".lock");
        var deadline = Environment.TickCount64 + 5000;
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
            }
            catch (IOException) when (Environment.TickCount64 < deadline)
            {
                Thread.Sleep(20);
            }
        }
    }
}
