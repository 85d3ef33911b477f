using Microsoft.Data.Sqlite;
using SleapRtc.Protocol.Signaling;

namespace SleapRtc.Signaling.Store;

/// <summary>
/// Job records in the rooms database (table <c>jobs</c>), on the room store's single connection and lock: one file
/// holds everything the server must not forget. The record travels as its wire JSON; the columns beside it are
/// what a query or a look at the file needs (room, state, finish time, queue order).
/// </summary>
public sealed class SqliteJobStore : IJobStore
{
    private readonly SqliteRoomStore _database;

    public SqliteJobStore(SqliteRoomStore database)
    {
        _database = database;
        _database.WithConnection(connection =>
        {
            using var command = connection.CreateCommand();
            command.CommandText = """
                CREATE TABLE IF NOT EXISTS jobs (
                    job_id      TEXT PRIMARY KEY,
                    room_id     TEXT NOT NULL,
                    state       TEXT NOT NULL,
                    finished_at INTEGER,
                    queue_order INTEGER NOT NULL,
                    record      TEXT NOT NULL
                );
                CREATE INDEX IF NOT EXISTS jobs_room ON jobs(room_id);
                """;
            return command.ExecuteNonQuery();
        });
    }

    public IReadOnlyList<StoredJob> LoadAll() => _database.WithConnection<IReadOnlyList<StoredJob>>(connection =>
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT record, queue_order FROM jobs;";
        var jobs = new List<StoredJob>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            // A row that no longer reads as a record (hand-edited file) is skipped rather than failing the start.
            if (JobRecord.FromWire(reader.GetString(0)) is { JobId.Length: > 0 } record) jobs.Add(new StoredJob(record, reader.GetInt64(1)));
        }
        return jobs;
    });

    public void Write(IReadOnlyCollection<StoredJob> upserts, IReadOnlyCollection<string> deletes)
    {
        if (upserts.Count == 0 && deletes.Count == 0) return;
        _database.WithConnection(connection =>
        {
            using var transaction = connection.BeginTransaction();
            if (upserts.Count > 0)
            {
                using var upsert = connection.CreateCommand();
                upsert.Transaction = transaction;
                upsert.CommandText = """
                    INSERT OR REPLACE INTO jobs (job_id, room_id, state, finished_at, queue_order, record)
                    VALUES ($id, $room, $state, $finished, $order, $record);
                    """;
                var id = upsert.Parameters.Add("$id", SqliteType.Text);
                var room = upsert.Parameters.Add("$room", SqliteType.Text);
                var state = upsert.Parameters.Add("$state", SqliteType.Text);
                var finished = upsert.Parameters.Add("$finished", SqliteType.Integer);
                var order = upsert.Parameters.Add("$order", SqliteType.Integer);
                var record = upsert.Parameters.Add("$record", SqliteType.Text);
                foreach (var job in upserts)
                {
                    id.Value = job.Record.JobId;
                    room.Value = job.Record.RoomId;
                    state.Value = job.Record.State;
                    finished.Value = job.Record.FinishedAt is { } at ? at : DBNull.Value;
                    order.Value = job.QueueOrder;
                    record.Value = job.Record.ToWire();
                    upsert.ExecuteNonQuery();
                }
            }
            if (deletes.Count > 0)
            {
                using var delete = connection.CreateCommand();
                delete.Transaction = transaction;
                delete.CommandText = "DELETE FROM jobs WHERE job_id = $id;";
                var id = delete.Parameters.Add("$id", SqliteType.Text);
                foreach (var jobId in deletes)
                {
                    id.Value = jobId;
                    delete.ExecuteNonQuery();
                }
            }
            transaction.Commit();
            return 0;
        });
    }
}
