namespace SleapRtc;

/// <summary>A room on a signaling server (New-SleapRoom output). Format views never show the full token.</summary>
public sealed class Room
{
    public string RoomId { get; set; } = "";
    public string Token { get; set; } = "";
    public string? Name { get; set; }
    public DateTimeOffset? ExpiresAt { get; set; }
    public string? Server { get; set; }
    public DateTimeOffset? CreatedAt { get; set; }

    /// <summary>The first characters of the token, enough to tell rooms apart without revealing it.</summary>
    public string MaskedToken => DisplayText.MaskToken(Token);

    public override string ToString() => RoomId;
}
