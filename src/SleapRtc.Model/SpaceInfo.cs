namespace SleapRtc;

/// <summary>A named inference space of a room (Get-SleapSpace): which worker serves it and how busy it is.</summary>
public sealed class SpaceInfo
{
    public string Name { get; set; } = "";
    /// <summary>The peer id of the worker that holds the name.</summary>
    public string WorkerId { get; set; } = "";
    /// <summary>ready (idle) or busy (running a request).</summary>
    public string State { get; set; } = "";
    /// <summary>Requests waiting or running.</summary>
    public int QueueLength { get; set; }
    public string RoomId { get; set; } = "";
    public string? GpuModel { get; set; }
    public string? Server { get; set; }
    public DateTimeOffset? ConnectedAt { get; set; }
}
