namespace SleapRtc.PowerShell.Tests;

/// <summary>Show-SleapMonitor against a real server on loopback: the link it builds must open the real monitor page.</summary>
public sealed class MonitorCmdletTests : IDisposable
{
    private readonly HostedPowerShell _ps = new();
    private readonly string _url;

    public MonitorCmdletTests()
    {
        _url = _ps.Run("(Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:').Url").Single<string>();
    }

    public void Dispose() => _ps.Dispose();

    [Fact]
    public async Task A_piped_room_gives_a_link_with_the_credentials_in_the_fragment_that_serves_the_monitor()
    {
        var room = _ps.Run($"New-SleapRoom -Server '{_url}'").SingleOf("SleapRtc.Room");
        var roomId = room.Text("RoomId")!;
        var token = room.Text("Token")!;
        var link = _ps.Run("$r | Show-SleapMonitor -NoBrowser", variables: new Dictionary<string, object?> { ["r"] = room.BaseObject }).Single<string>();

        var uri = new Uri(link);
        Assert.Equal("http", uri.Scheme);
        Assert.Equal("127.0.0.1", uri.Host);
        Assert.Equal("/monitor", uri.AbsolutePath);
        Assert.Equal("", uri.Query); // the token must never be in a query string, which servers log
        Assert.Equal($"#room={Uri.EscapeDataString(roomId)}&token={Uri.EscapeDataString(token)}", uri.Fragment);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var response = await http.GetAsync(uri.GetLeftPart(UriPartial.Path));
        Assert.True(response.IsSuccessStatusCode, $"GET /monitor answered {(int)response.StatusCode}");
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public void Without_a_display_the_link_is_written_to_the_output_instead_of_opening_a_browser()
    {
        var room = _ps.Run($"New-SleapRoom -Server '{_url}'").SingleOf("SleapRtc.Room");
        var result = _ps.Run($$"""
            $saved = $env:DISPLAY, $env:WAYLAND_DISPLAY
            $env:DISPLAY = $null; $env:WAYLAND_DISPLAY = $null
            try { Show-SleapMonitor -RoomId {{room.Text("RoomId")}} -Verbose 4>&1 }
            finally { $env:DISPLAY, $env:WAYLAND_DISPLAY = $saved }
            """).ThrowOnError();
        var link = Assert.Single(result.Output, o => o.BaseObject is string).ToString();
        Assert.StartsWith(_url.Replace("ws://", "http://", StringComparison.Ordinal).TrimEnd('/') + "/monitor#room=", link);
        Assert.Contains(result.Output, o => o.ToString().Contains("No browser could be opened", StringComparison.Ordinal));
    }

    [Fact]
    public void A_room_without_known_credentials_is_a_MissingRoomCredentials_error()
    {
        var result = _ps.Run("$env:SLEAP_RTC_ROOM_TOKEN = $null; Show-SleapMonitor -RoomId no-such-room -NoBrowser", TimeSpan.FromSeconds(20));
        Assert.Empty(result.Output);
        Assert.StartsWith("MissingRoomCredentials,", Assert.Single(result.Errors).FullyQualifiedErrorId);
    }
}
