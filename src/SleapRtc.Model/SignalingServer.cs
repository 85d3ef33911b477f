namespace SleapRtc;

/// <summary>A signaling server started in this session (Start-SleapSignalingServer output).</summary>
public sealed class SignalingServer
{
    public string Url { get; set; } = "";
    public int Port { get; set; }
    public string ListenAddress { get; set; } = "";
    public DateTimeOffset StartedAt { get; set; }
    /// <summary>Running or Stopped.</summary>
    public string State { get; set; } = "";
    public string? DatabasePath { get; set; }
    /// <summary>Identifies the server within the session so Stop-/Get- can find it again.</summary>
    public Guid InstanceId { get; set; }

    public override string ToString() => Url;
}
