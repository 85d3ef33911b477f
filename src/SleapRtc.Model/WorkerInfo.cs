namespace SleapRtc;

/// <summary>A worker seen through room discovery (Get-SleapWorker output).</summary>
public sealed class WorkerInfo
{
    public string PeerId { get; set; } = "";
    public string RoomId { get; set; } = "";
    public string GpuModel { get; set; } = "CPU";
    public long GpuMemoryMB { get; set; }
    public string? CudaVersion { get; set; }
    public string? Hostname { get; set; }
    /// <summary>available, reserved, busy (or offline in monitor views).</summary>
    public string Status { get; set; } = WorkerStatus.Available;
    public string? SleapVersion { get; set; }
    public DateTimeOffset? ConnectedAt { get; set; }
    /// <summary>Every metadata property the worker advertised, as sent on the wire.</summary>
    public IDictionary<string, object?> Properties { get; set; } = new Dictionary<string, object?>(StringComparer.Ordinal);
    public string[] Tags { get; set; } = Array.Empty<string>();
    /// <summary>Signaling server URL the worker was discovered through, so a piped object carries it onward.</summary>
    public string? Server { get; set; }
    /// <summary>Room token the worker was discovered with; not shown by format views.</summary>
    public string? Token { get; set; }
    /// <summary>The job the worker is running, when it publishes one.</summary>
    public JobProgress? Job { get; set; }

    public override string ToString() => PeerId;
}

/// <summary>Status values of the worker lifecycle (classic wire strings).</summary>
public static class WorkerStatus
{
    public const string Available = "available";
    public const string Reserved = "reserved";
    public const string Busy = "busy";
    public const string Offline = "offline";
}
