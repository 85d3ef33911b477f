using Microsoft.Data.Sqlite;

namespace SleapRtc.Signaling.Store;

/// <summary>
/// Rooms, server keys and (through <see cref="SqliteJobStore"/>) job records in one SQLite file (WAL), so a restart keeps rooms and tokens.
/// One connection guarded by a lock: room operations are rare and tiny, and ":memory:" databases
/// live only as long as their single connection.
/// </summary>
public sealed class SqliteRoomStore : IRoomStore
{
    private readonly SqliteConnection _connection;
    private readonly object _gate = new();
    private bool _disposed;

    public string DatabasePath { get; }

    private SqliteRoomStore(SqliteConnection connection, string databasePath)
    {
        _connection = connection;
        DatabasePath = databasePath;
    }

    /// <summary>Opens (creating if needed) the database; ":memory:" gives a private in-memory store.</summary>
    public static SqliteRoomStore Open(string databasePath)
    {
        if (string.IsNullOrWhiteSpace(databasePath)) throw new ArgumentException("A database path is required.", nameof(databasePath));
        var inMemory = databasePath == ":memory:";
        if (!inMemory)
        {
            var directory = Path.GetDirectoryName(Path.GetFullPath(databasePath));
            if (!string.IsNullOrEmpty(directory)) Directory.CreateDirectory(directory);
        }

        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = databasePath,
            Mode = inMemory ? SqliteOpenMode.Memory : SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
        };
        var connection = new SqliteConnection(builder.ToString());
        try
        {
            connection.Open();
            Execute(connection, inMemory ? "PRAGMA journal_mode=MEMORY;" : "PRAGMA journal_mode=WAL;");
            Execute(connection, "PRAGMA busy_timeout=5000;");
            Execute(connection, """
                CREATE TABLE IF NOT EXISTS rooms (
                    room_id    TEXT PRIMARY KEY,
                    token      TEXT NOT NULL,
                    name       TEXT,
                    created_by TEXT,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER
                );
                CREATE INDEX IF NOT EXISTS rooms_expires_at ON rooms(expires_at);
                CREATE TABLE IF NOT EXISTS server_keys (
                    name  TEXT PRIMARY KEY,
                    value BLOB NOT NULL
                );
                """);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
        return new SqliteRoomStore(connection, databasePath);
    }

    public Task<bool> TryCreateRoomAsync(RoomRecord room, CancellationToken ct) => Run(() =>
    {
        using var command = _connection.CreateCommand();
        command.CommandText = """
            INSERT OR IGNORE INTO rooms (room_id, token, name, created_by, created_at, expires_at)
            VALUES ($id, $token, $name, $by, $created, $expires);
            """;
        command.Parameters.AddWithValue("$id", room.RoomId);
        command.Parameters.AddWithValue("$token", room.Token);
        command.Parameters.AddWithValue("$name", (object?)room.Name ?? DBNull.Value);
        command.Parameters.AddWithValue("$by", (object?)room.CreatedBy ?? DBNull.Value);
        command.Parameters.AddWithValue("$created", room.CreatedAt.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$expires", room.ExpiresAt is { } e ? e.ToUnixTimeMilliseconds() : DBNull.Value);
        return command.ExecuteNonQuery() == 1;
    }, ct);

    public Task<RoomRecord?> GetRoomAsync(string roomId, CancellationToken ct) => Run(() =>
    {
        using var command = _connection.CreateCommand();
        command.CommandText = "SELECT room_id, token, name, created_by, created_at, expires_at FROM rooms WHERE room_id = $id;";
        command.Parameters.AddWithValue("$id", roomId);
        using var reader = command.ExecuteReader();
        if (!reader.Read()) return null;
        return new RoomRecord(
            reader.GetString(0),
            reader.GetString(1),
            reader.IsDBNull(2) ? null : reader.GetString(2),
            reader.IsDBNull(3) ? null : reader.GetString(3),
            DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4)),
            reader.IsDBNull(5) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5)));
    }, ct);

    public Task<bool> DeleteRoomAsync(string roomId, CancellationToken ct) => Run(() =>
    {
        using var command = _connection.CreateCommand();
        command.CommandText = "DELETE FROM rooms WHERE room_id = $id;";
        command.Parameters.AddWithValue("$id", roomId);
        return command.ExecuteNonQuery() > 0;
    }, ct);

    public Task<IReadOnlyList<string>> PurgeExpiredAsync(DateTimeOffset now, CancellationToken ct) => Run<IReadOnlyList<string>>(() =>
    {
        using var command = _connection.CreateCommand();
        command.CommandText = "DELETE FROM rooms WHERE expires_at IS NOT NULL AND expires_at <= $now RETURNING room_id;";
        command.Parameters.AddWithValue("$now", now.ToUnixTimeMilliseconds());
        var purged = new List<string>();
        using var reader = command.ExecuteReader();
        while (reader.Read()) purged.Add(reader.GetString(0));
        return purged;
    }, ct);

    public Task<int> CountRoomsAsync(CancellationToken ct) => Run(() =>
    {
        using var command = _connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM rooms;";
        return Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }, ct);

    public Task<byte[]> GetOrCreateKeyAsync(string name, Func<byte[]> create, CancellationToken ct) => Run(() =>
    {
        using (var insert = _connection.CreateCommand())
        {
            insert.CommandText = "INSERT OR IGNORE INTO server_keys (name, value) VALUES ($name, $value);";
            insert.Parameters.AddWithValue("$name", name);
            insert.Parameters.AddWithValue("$value", create());
            insert.ExecuteNonQuery();
        }
        using var select = _connection.CreateCommand();
        select.CommandText = "SELECT value FROM server_keys WHERE name = $name;";
        select.Parameters.AddWithValue("$name", name);
        return (byte[])select.ExecuteScalar()!;
    }, ct);

    private Task<T> Run<T>(Func<T> operation, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        return Task.FromResult(WithConnection(_ => operation()));
    }

    /// <summary>Runs <paramref name="operation"/> on the one connection, under its lock (the job store shares the file and the connection).</summary>
    internal T WithConnection<T>(Func<SqliteConnection, T> operation)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return operation(_connection);
        }
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposed) return ValueTask.CompletedTask;
            _disposed = true;
            _connection.Dispose();
        }
        return ValueTask.CompletedTask;
    }
}
