using System.Text.Json;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>
/// Room credentials remembered on this machine (written by New-SleapRoom and Start-SleapWorker) so later commands
/// need only -RoomId. One JSON file in the user's data directory, readable by the user only.
/// </summary>
public sealed class RoomCredentialStore
{
    private const string FileName = "rooms.json";
    private static readonly JsonSerializerOptions s_json = new() { WriteIndented = true, IgnoreReadOnlyProperties = true };
    private static readonly object s_fileGate = new();
    private readonly string _path;

    public RoomCredentialStore(string directory) => _path = Path.Combine(directory, FileName);

    /// <summary>SLEAP_RTC_DATA_DIR when set, else the per-user application data folder (~/.local/share/SleapRtc, %LOCALAPPDATA%\SleapRtc).</summary>
    public static RoomCredentialStore ForCurrentUser() => new(DataDirectory());

    public static string DataDirectory()
    {
        var overridden = Environment.GetEnvironmentVariable("SLEAP_RTC_DATA_DIR");
        if (!string.IsNullOrWhiteSpace(overridden)) return overridden;
        var root = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create);
        return Path.Combine(root, "SleapRtc");
    }

    public string FilePath => _path;

    public IReadOnlyList<Room> GetAll()
    {
        lock (s_fileGate)
        {
            return ReadUnlocked().Values.Where(r => !IsExpired(r)).OrderBy(r => r.RoomId, StringComparer.Ordinal).ToList();
        }
    }

    public Room? Find(string roomId)
    {
        lock (s_fileGate)
        {
            return ReadUnlocked().TryGetValue(roomId, out var room) && !IsExpired(room) ? room : null;
        }
    }

    public void Save(Room room)
    {
        if (string.IsNullOrEmpty(room.RoomId)) throw new ArgumentException("A room id is required.", nameof(room));
        lock (s_fileGate)
        {
            var rooms = ReadUnlocked();
            rooms[room.RoomId] = room;
            WriteUnlocked(rooms);
        }
    }

    public bool Remove(string roomId)
    {
        lock (s_fileGate)
        {
            var rooms = ReadUnlocked();
            if (!rooms.Remove(roomId)) return false;
            WriteUnlocked(rooms);
            return true;
        }
    }

    private static bool IsExpired(Room room) => room.ExpiresAt is { } expires && expires <= DateTimeOffset.UtcNow;

    private Dictionary<string, Room> ReadUnlocked()
    {
        if (!File.Exists(_path)) return new(StringComparer.Ordinal);
        try
        {
            var stored = JsonSerializer.Deserialize<List<Room>>(File.ReadAllText(_path), s_json) ?? new();
            return stored.Where(r => r.RoomId.Length > 0).GroupBy(r => r.RoomId, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => g.Last(), StringComparer.Ordinal);
        }
        catch (JsonException)
        {
            // A damaged file must not break every command; it is rewritten on the next save.
            return new(StringComparer.Ordinal);
        }
    }

    private void WriteUnlocked(Dictionary<string, Room> rooms)
    {
        var directory = Path.GetDirectoryName(_path)!;
        Directory.CreateDirectory(directory);
        var temporary = _path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        // Create the file with owner-only permissions before the token is written into it.
        using (var stream = CreatePrivateFile(temporary))
        {
            JsonSerializer.Serialize(stream, rooms.Values.OrderBy(r => r.RoomId, StringComparer.Ordinal).ToList(), s_json);
        }
        File.Move(temporary, _path, overwrite: true);
    }

    private static FileStream CreatePrivateFile(string path)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        return new FileStream(path, options);
    }
}
