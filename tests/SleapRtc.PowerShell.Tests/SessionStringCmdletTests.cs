using System.Management.Automation;

namespace SleapRtc.PowerShell.Tests;

public sealed class SessionStringCmdletTests : IClassFixture<SharedSession>
{
    private readonly HostedPowerShell _ps;
    public SessionStringCmdletTests(SharedSession session) => _ps = session.PowerShell;

    [Fact]
    public void ConvertTo_writes_the_classic_padded_format()
    {
        var text = _ps.Run("ConvertTo-SleapSessionString -RoomId r1 -Token t1 -PeerId p1").Single<string>();
        // Byte-for-byte what classic sleap-RTC (Python json.dumps + urlsafe_b64encode) prints for these values.
        Assert.Equal("sleap-session:eyJyIjogInIxIiwgInQiOiAidDEiLCAicCI6ICJwMSJ9", text);
    }

    [Fact]
    public void Scenario05_Round_trip_through_the_pipeline_keeps_every_field()
    {
        var info = _ps.Run("ConvertTo-SleapSessionString r1 t1 p1 -Server http://lab:8080 | ConvertFrom-SleapSessionString").SingleOf("SleapRtc.SessionInfo");
        Assert.Equal(("r1", "t1", "p1", "http://lab:8080"), (info.Text("RoomId"), info.Text("Token"), info.Text("PeerId"), info.Text("Server")));
    }

    [Fact]
    public void ConvertTo_binds_by_property_name_from_piped_objects()
    {
        var text = _ps.Run("[pscustomobject]@{ RoomId = 'r1'; Token = 't1'; PeerId = 'p1' } | ConvertTo-SleapSessionString").Single<string>();
        Assert.Equal("sleap-session:eyJyIjogInIxIiwgInQiOiAidDEiLCAicCI6ICJwMSJ9", text);
    }

    [Theory]
    [InlineData("eyJyIjogInIxIiwgInQiOiAidDEiLCAicCI6ICJwMSJ9")]               // no prefix
    [InlineData("sleap-session:eyJyIjogInIxIiwgInQiOiAidDEiLCAicCI6ICJwMSJ9")] // already unpadded for this length
    [InlineData("  sleap-session:eyJyIjogInIxIiwgInQiOiAidDEiLCAicCI6ICJwMSJ9  ")]
    public void ConvertFrom_tolerates_missing_prefix_and_white_space(string value)
    {
        var info = _ps.Run("ConvertFrom-SleapSessionString -SessionString $value", variables: new Dictionary<string, object?> { ["value"] = value })
            .SingleOf("SleapRtc.SessionInfo");
        Assert.Equal(("r1", "t1", "p1"), (info.Text("RoomId"), info.Text("Token"), info.Text("PeerId")));
    }

    [Fact]
    public void ConvertFrom_tolerates_missing_padding()
    {
        var padded = _ps.Run("ConvertTo-SleapSessionString -RoomId room-12 -Token tok -PeerId peer").Single<string>();
        Assert.EndsWith("=", padded);
        var info = _ps.Run("ConvertFrom-SleapSessionString $value", variables: new Dictionary<string, object?> { ["value"] = padded.TrimEnd('=') })
            .SingleOf("SleapRtc.SessionInfo");
        Assert.Equal("room-12", info.Text("RoomId"));
    }

    [Fact]
    public void Invalid_strings_are_reported_once_each_and_the_rest_of_the_pipeline_continues()
    {
        var result = _ps.Run("'not a session string', 'sleap-session:eyJyIjogInIxIiwgInQiOiAidDEiLCAicCI6ICJwMSJ9' | ConvertFrom-SleapSessionString");
        Assert.Single(result.Output);
        var error = Assert.Single(result.Errors);
        Assert.Equal("InvalidSessionString,SleapRtc.PowerShell.Commands.ConvertFromSleapSessionStringCommand", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, error.CategoryInfo.Category);
        Assert.Equal("not a session string", error.TargetObject);
        Assert.Contains("Invalid session string", error.ErrorDetails.Message);
        Assert.False(string.IsNullOrEmpty(error.ErrorDetails.RecommendedAction));
    }
}
