namespace SleapRtc;

/// <summary>A worker running in this PowerShell session (Start-SleapWorker output).</summary>
public sealed class WorkerSession
{
    public string PeerId { get; set; } = "";
    public string RoomId { get; set; } = "";
    public string Token { get; set; } = "";
    public string SessionString { get; set; } = "";
    public string Status { get; set; } = WorkerStatus.Available;
    public string GpuModel { get; set; } = "CPU";
    public long GpuMemoryMB { get; set; }
    public string? Server { get; set; }
    public string? Name { get; set; }
    public int? GpuId { get; set; }
    public string? WorkingDirectory { get; set; }
    public DateTimeOffset StartedAt { get; set; }
    /// <summary>The inference space this worker serves (Start-SleapWorker -Space), or null.</summary>
    public string? Space { get; set; }

    public override string ToString() => PeerId;
}
