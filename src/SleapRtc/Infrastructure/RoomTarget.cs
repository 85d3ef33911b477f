using SleapRtc.Client.Credentials;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>
/// The one way cmdlets decide which room, token and signaling server they talk to.
/// Room and token: -SessionString; else -RoomId with -Token or the token saved for that room; else
/// SLEAP_RTC_ROOM_ID/_TOKEN; else the default room: the one created last in this session, or the only room saved on
/// this machine. Server: -Server, the session string's, the one saved with the room, SLEAP_RTC_SIGNALING_URL (and the
/// classic variables), then a server started in this session. Reads the session's state: call it on the pipeline thread.
/// Every failure is a <see cref="SleapRtcException"/> with a stable id.
/// </summary>
internal static class RoomTarget
{
    /// <summary>An existing room and the server to reach it through (discovery, submission, monitor, removal).</summary>
    public static ResolvedRoom Resolve(string? roomId, string? token, string? server, string? sessionString = null)
    {
        var store = ModuleData.Credentials();
        if (NamesNoRoom(roomId, sessionString)) roomId = DefaultRoom(store);
        var room = Decode(() => CredentialResolver.Resolve(roomId, token, server, sessionString, store));
        if (room.Server is not null) return room;
        return room.WithServer(SessionServer(reachableFromOtherMachines: false) ?? throw SleapErrors.MissingServerException());
    }

    /// <summary>The room a piped worker belongs to, with -RoomId/-Token/-Server overriding what it carries.</summary>
    public static ResolvedRoom OfWorker(WorkerInfo worker, string? roomId, string? token, string? server) =>
        Resolve(roomId ?? worker.RoomId, token ?? worker.Token, server ?? worker.Server);

    /// <summary>The room a submission (training, inference) goes to: the piped worker's, unless a session string names one.</summary>
    public static ResolvedRoom ForSubmission(WorkerInfo? worker, string? roomId, string? token, string? server, string? sessionString) =>
        worker is not null && string.IsNullOrEmpty(sessionString)
            ? OfWorker(worker, roomId, token, server)
            : Resolve(roomId, token, server, sessionString);

    /// <summary>
    /// What Start-SleapWorker joins: the named room (null when nothing names one: the worker creates a room) and the
    /// server (null when none is known: the worker starts an embedded one). A session server is given by its LAN
    /// address, because the worker's session string carries it to other machines.
    /// </summary>
    public static (ResolvedRoom? Room, string? Server) ForWorker(string? roomId, string? token, string? server)
    {
        ResolvedRoom? room = null;
        if (!NamesNoRoom(roomId, null))
            room = Decode(() => CredentialResolver.Resolve(roomId, token, server, null, ModuleData.Credentials()));
        var chosenServer = room?.Server ?? Trimmed(server) ?? CredentialResolver.ServerFromEnvironment()
            ?? SessionServer(reachableFromOtherMachines: true);
        return (room, chosenServer);
    }

    /// <summary>The server a new room is created on (New-SleapRoom): -Server, the environment, or a session server.</summary>
    public static string ServerForNewRoom(string? server) =>
        Trimmed(server) ?? CredentialResolver.ServerFromEnvironment() ?? SessionServer(reachableFromOtherMachines: false)
        ?? throw SleapErrors.MissingServerException();

    /// <summary>Remembers a room this session created so later commands can leave out -RoomId.</summary>
    public static void RememberCreated(string roomId) => SessionRegistry.Current.RememberCreatedRoom(roomId);

    private static bool NamesNoRoom(string? roomId, string? sessionString) =>
        string.IsNullOrWhiteSpace(roomId) && string.IsNullOrWhiteSpace(sessionString)
        && string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(CredentialResolver.RoomIdVariable));

    /// <summary>The room created last in this session, else the only saved room; several saved rooms need -RoomId.</summary>
    private static string DefaultRoom(CredentialStore store)
    {
        if (SessionRegistry.Current.LastCreatedRoom is { } created && store.Get(created) is not null) return created;
        var saved = store.List();
        return saved.Count switch
        {
            1 => saved[0].RoomId,
            0 => throw new MissingCredentialsException("no -SessionString, no -RoomId, no SLEAP_RTC_ROOM_ID, and no room was created in this session or saved on this machine"),
            _ => throw new MissingCredentialsException($"no -RoomId, and {saved.Count} rooms are saved on this machine ({string.Join(", ", saved.Select(r => r.RoomId))}), so which one is meant is not clear"),
        };
    }

    private static ResolvedRoom Decode(Func<ResolvedRoom> resolve)
    {
        try { return resolve(); }
        catch (FormatException ex) { throw SleapErrors.InvalidSessionStringException(ex); }
    }

    private static string? SessionServer(bool reachableFromOtherMachines)
    {
        var server = RunningServer.OfThisSession().FirstOrDefault();
        return reachableFromOtherMachines ? server?.Url : server?.LocalUrl;
    }

    private static string? Trimmed(string? value) => string.IsNullOrWhiteSpace(value) ? null : value!.Trim();
}
