using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Signaling;

namespace SleapRtc.Worker.Jobs;

/// <summary>
/// A package upload cut off mid-file (issue 16): the job folder with the bytes that arrived, kept for a while so the
/// same job can resume it over a new connection (hello resume_upload with the job id, name and size) instead of
/// starting from zero. The worker stays reserved for it meanwhile; unclaimed, it is discarded.
/// </summary>
public sealed class ParkedUpload
{
    internal ParkedUpload(string jobId, string? clientPeerId, string jobDirectory, FolderLock? folderLock, FileMetaInfo meta, string partialPath, long bytes, JobRecord record)
    {
        JobId = jobId;
        ClientPeerId = clientPeerId;
        JobDirectory = jobDirectory;
        FolderLock = folderLock;
        Meta = meta;
        PartialPath = partialPath;
        Bytes = bytes;
        Record = record;
    }

    public string JobId { get; }
    /// <summary>The signaling peer id of the client that sent these bytes: the only one that may resume the upload (job ids
    /// are visible to every member of the room, so a job id alone proves nothing). Null: nobody may.</summary>
    public string? ClientPeerId { get; }
    public string JobDirectory { get; }
    internal FolderLock? FolderLock { get; private set; }
    /// <summary>The package's FILE_META (wire-safe name, size) as the client first sent it.</summary>
    public FileMetaInfo Meta { get; }
    public string PartialPath { get; }
    /// <summary>Bytes held: the resume starts here.</summary>
    public long Bytes { get; }
    /// <summary>Entries of the package already written to their files while it arrived (see <see cref="ZipEntrySplitter"/>).</summary>
    public IReadOnlyList<ZipEntrySplitter.SplitEntry> SplitEntries { get; init; } = Array.Empty<ZipEntrySplitter.SplitEntry>();
    /// <summary>The job's record as it stood (state uploading), for the session that resumes it.</summary>
    internal JobRecord Record { get; }

    /// <summary>True when a resume hello names this upload: same job, same file name and size.</summary>
    public bool Matches(string jobId, TransferPoint upload) =>
        jobId == JobId && FileMetaInfo.WireSafeName(upload.Name) == Meta.Name && upload.Size == Meta.Size;

    /// <summary>True when <paramref name="clientPeerId"/> (an offer's sender, set by the server from its connection) sent this upload.</summary>
    public bool BelongsTo(string? clientPeerId) => ClientPeerId is not null && string.Equals(clientPeerId, ClientPeerId, StringComparison.Ordinal);

    /// <summary>Hands the folder (and its lock) over to the session that resumes the upload.</summary>
    internal FolderLock? TakeFolderLock()
    {
        var taken = FolderLock;
        FolderLock = null;
        return taken;
    }

    /// <summary>Nobody came back in time (or the worker stops): the folder and its partial package go.</summary>
    public void Discard()
    {
        TakeFolderLock()?.Dispose();
        for (var attempt = 0; attempt < 3; attempt++)
        {
            try
            {
                if (Directory.Exists(JobDirectory)) Directory.Delete(JobDirectory, recursive: true);
                return;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Thread.Sleep(50); }
        }
    }
}
