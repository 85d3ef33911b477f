using SleapRtc.Client.Credentials;
using SleapRtc.Protocol;
using SleapRtc.Protocol.Jobs;
using Xunit;

namespace SleapRtc.Job.Tests;

// Environment variables are process-wide: these tests must not run beside others that read them.
[CollectionDefinition(nameof(EnvironmentCollection), DisableParallelization = true)]
public sealed class EnvironmentCollection;

[Collection(nameof(EnvironmentCollection))]
public sealed class CredentialTests : IDisposable
{
    private static readonly string[] Variables =
    {
        CredentialResolver.RoomIdVariable, CredentialResolver.RoomTokenVariable, CredentialResolver.ServerVariable,
        CredentialResolver.UpstreamWsVariable, CredentialResolver.UpstreamHttpVariable,
    };
    private readonly Dictionary<string, string?> _saved = Variables.ToDictionary(v => v, Environment.GetEnvironmentVariable);
    private readonly CredentialStore _store = new(Path.Combine(Fixtures.NewTempDirectory("creds"), "SleapRtc"));

    public CredentialTests()
    {
        foreach (var v in Variables) Environment.SetEnvironmentVariable(v, null);
    }

    public void Dispose()
    {
        foreach (var (k, v) in _saved) Environment.SetEnvironmentVariable(k, v);
    }

    [Fact]
    public void Store_saves_lists_gets_and_removes_rooms_in_a_private_file()
    {
        _store.Save(new RoomCredentials { RoomId = "r1", Token = "t1", Server = "ws://a:1", Name = "lab" });
        _store.Save(new RoomCredentials { RoomId = "r2", Token = "t2" });
        _store.Save(new RoomCredentials { RoomId = "r1", Token = "t1b", Server = "ws://b:2" });

        Assert.Equal(new[] { "r1", "r2" }, _store.List().Select(r => r.RoomId).OrderBy(r => r));
        Assert.Equal(("t1b", "ws://b:2"), (_store.Get("r1")!.Token, _store.Get("r1")!.Server));
        Assert.True(_store.Remove("r2"));
        Assert.False(_store.Remove("r2"));
        Assert.Null(_store.Get("r2"));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_store.FilePath));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_store.Directory));
        }
        Assert.Equal("t1b", new CredentialStore(_store.Directory).Get("r1")!.Token);
    }

    [Fact]
    public void A_damaged_store_file_does_not_lock_the_user_out()
    {
        Directory.CreateDirectory(_store.Directory);
        File.WriteAllText(_store.FilePath, "{ not json");
        Assert.Empty(_store.List());
        _store.Save(new RoomCredentials { RoomId = "r", Token = "t" });
        Assert.Equal("t", _store.Get("r")!.Token);
    }

    [Fact]
    public void Explicit_values_win_then_saved_then_environment()
    {
        _store.Save(new RoomCredentials { RoomId = "room", Token = "saved-token", Server = "ws://saved:1" });
        Environment.SetEnvironmentVariable(CredentialResolver.ServerVariable, "ws://env:3");

        var explicitRoom = CredentialResolver.Resolve("room", "given-token", "ws://given:2", null, _store);
        Assert.Equal(("given-token", "ws://given:2", CredentialSource.Explicit), (explicitRoom.Token, explicitRoom.Server, explicitRoom.Source));

        var saved = CredentialResolver.Resolve("room", null, null, null, _store);
        Assert.Equal(("saved-token", "ws://saved:1", CredentialSource.Saved), (saved.Token, saved.Server, saved.Source));

        Environment.SetEnvironmentVariable(CredentialResolver.RoomIdVariable, "envroom");
        Environment.SetEnvironmentVariable(CredentialResolver.RoomTokenVariable, "env-token");
        var fromEnvironment = CredentialResolver.Resolve(null, null, null, null, _store);
        Assert.Equal(("envroom", "env-token", "ws://env:3", CredentialSource.Environment),
            (fromEnvironment.RoomId, fromEnvironment.Token, fromEnvironment.Server, fromEnvironment.Source));
    }

    [Fact]
    public void Upstream_server_variables_are_honoured_in_order()
    {
        Environment.SetEnvironmentVariable(CredentialResolver.UpstreamHttpVariable, "http://h:8001");
        Assert.Equal("http://h:8001", CredentialResolver.ServerFromEnvironment());
        Environment.SetEnvironmentVariable(CredentialResolver.UpstreamWsVariable, "ws://w:8080");
        Assert.Equal("ws://w:8080", CredentialResolver.ServerFromEnvironment());
        Environment.SetEnvironmentVariable(CredentialResolver.ServerVariable, "ws://ours:1");
        Assert.Equal("ws://ours:1", CredentialResolver.ServerFromEnvironment());
    }

    [Fact]
    public void Session_strings_carry_room_token_worker_and_server()
    {
        var session = SessionString.Encode("room", "tok", "peer-1", "ws://srv:9");
        var resolved = CredentialResolver.Resolve(null, null, null, session, _store);
        Assert.Equal(("room", "tok", "peer-1", "ws://srv:9", CredentialSource.SessionString),
            (resolved.RoomId, resolved.Token, resolved.WorkerPeerId, resolved.Server, resolved.Source));
        Assert.Equal("ws://other:1", CredentialResolver.Resolve(null, null, "ws://other:1", session, _store).Server);
        Assert.Throws<FormatException>(() => CredentialResolver.Resolve(null, null, null, "sleap-session:!!!", _store));
    }

    [Fact]
    public void Missing_credentials_name_every_way_to_give_them()
    {
        var none = Assert.Throws<MissingCredentialsException>(() => CredentialResolver.Resolve(null, null, null, null, _store));
        Assert.Equal("MissingRoomCredentials", none.ErrorId);
        Assert.Contains("SLEAP_RTC_ROOM_ID", none.RecommendedAction);
        var noToken = Assert.Throws<MissingCredentialsException>(() => CredentialResolver.Resolve("unknown-room", null, null, null, _store));
        Assert.Contains("unknown-room", noToken.Message);
    }
}
