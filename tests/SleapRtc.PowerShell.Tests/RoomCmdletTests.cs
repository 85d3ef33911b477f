using System.Management.Automation;

namespace SleapRtc.PowerShell.Tests;

public sealed class RoomCmdletTests : IDisposable
{
    private readonly HostedPowerShell _ps = new();
    private readonly string _url;

    public RoomCmdletTests()
    {
        _url = _ps.Run("(Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:').Url").Single<string>();
    }

    public void Dispose() => _ps.Dispose();

    [Fact]
    public void New_room_has_a_strong_token_is_saved_and_completes_for_RoomId()
    {
        var room = _ps.Run("New-SleapRoom -Name lab-a -ExpiresIn ([timespan]::FromDays(7))").SingleOf("SleapRtc.Room");
        var roomId = room.Text("RoomId")!;
        var token = room.Text("Token")!;
        Assert.True(token.Length >= 22, "a 128-bit token needs at least 22 base64 characters");
        Assert.Equal("lab-a", room.Text("Name"));
        var expires = (DateTimeOffset)room.Prop("ExpiresAt")!;
        Assert.InRange(expires, DateTimeOffset.UtcNow.AddDays(6.9), DateTimeOffset.UtcNow.AddDays(7.1));

        var saved = File.ReadAllText(Path.Combine(TestEnvironment.DataDirectory, "credentials.json"));
        Assert.Contains(roomId, saved);
        if (!OperatingSystem.IsWindows())
        {
            var mode = File.GetUnixFileMode(Path.Combine(TestEnvironment.DataDirectory, "credentials.json"));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, mode);
        }

        var completions = Complete("Remove-SleapRoom -RoomId " + roomId[..4]);
        Assert.Contains(roomId, completions);
    }

    [Fact]
    public void A_piped_room_is_removed_on_the_server_and_forgotten_locally()
    {
        var roomId = _ps.Run("(New-SleapRoom).RoomId").Single<string>();
        _ps.Run($"[SleapRtc.Room]@{{ RoomId = '{roomId}' }} | Remove-SleapRoom -Confirm:$false").ThrowOnError();
        Assert.DoesNotContain(roomId, Complete("Remove-SleapRoom -RoomId " + roomId[..4]));
        // Gone on the server too: the token no longer works (the server answers an unknown room like a wrong token).
        var again = _ps.Run($"Remove-SleapRoom -RoomId {roomId} -Token whatever -Server '{_url}' -Confirm:$false");
        Assert.StartsWith("InvalidRoomCredentials,", Assert.Single(again.Errors).FullyQualifiedErrorId);
    }

    [Fact]
    public void Remove_with_WhatIf_keeps_the_room()
    {
        var roomId = _ps.Run("(New-SleapRoom).RoomId").Single<string>();
        _ps.Run($"Remove-SleapRoom -RoomId {roomId} -WhatIf").ThrowOnError();
        Assert.Contains(roomId, Complete("Remove-SleapRoom -RoomId " + roomId[..4]));
        _ps.Run($"Remove-SleapRoom -RoomId {roomId} -Confirm:$false").ThrowOnError();
    }

    [Fact]
    public void A_wrong_token_is_reported_as_invalid_room_credentials()
    {
        var roomId = _ps.Run("(New-SleapRoom).RoomId").Single<string>();
        var result = _ps.Run($"Remove-SleapRoom -RoomId {roomId} -Token wrong-token -Confirm:$false");
        var error = Assert.Single(result.Errors);
        Assert.StartsWith("InvalidRoomCredentials,", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.AuthenticationError, error.CategoryInfo.Category);
        Assert.Equal(roomId, error.TargetObject);
        Assert.Contains("Invalid room credentials", error.ErrorDetails.Message);
        Assert.DoesNotContain("wrong-token", error.ToString());
    }

    [Fact]
    public void An_unknown_room_without_a_token_says_what_to_pass()
    {
        var result = _ps.Run("Remove-SleapRoom -RoomId no-such-room -Confirm:$false");
        var error = Assert.Single(result.Errors);
        Assert.StartsWith("MissingRoomCredentials,", error.FullyQualifiedErrorId);
        Assert.Contains("-Token", error.ErrorDetails.RecommendedAction);
    }

    [Fact]
    public void New_room_without_any_server_fails_with_a_clear_error()
    {
        using var bare = new HostedPowerShell();
        var error = bare.Run("New-SleapRoom").FirstError;
        Assert.NotNull(error);
        Assert.StartsWith("MissingSignalingServer,", error!.FullyQualifiedErrorId);
        Assert.Contains("SLEAP_RTC_SIGNALING_URL", error.ErrorDetails.RecommendedAction);
    }

    [Fact]
    public void An_unreachable_server_fails_with_a_connection_error()
    {
        var port = FreePort();
        var error = _ps.Run($"New-SleapRoom -Server ws://127.0.0.1:{port}").FirstError;
        Assert.NotNull(error);
        Assert.StartsWith("RoomCreateFailed,", error!.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ConnectionError, error.CategoryInfo.Category);
    }

    private List<string> Complete(string input) =>
        _ps.Run("[System.Management.Automation.CommandCompletion]::CompleteInput($text, $text.Length, $null).CompletionMatches | ForEach-Object { $_.CompletionText }",
            variables: new Dictionary<string, object?> { ["text"] = input }).ThrowOnError().Output.Select(o => o.ToString()).ToList();

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
