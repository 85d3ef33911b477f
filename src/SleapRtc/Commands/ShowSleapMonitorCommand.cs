using System.ComponentModel;
using System.Diagnostics;
using System.Management.Automation;
using System.Runtime.InteropServices;
using SleapRtc.Client.Credentials;
using SleapRtc.PowerShell.Completion;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Signaling.Client;
using SleapRtc.Signaling.Monitor;

namespace SleapRtc.PowerShell.Commands;

/// <summary>
/// Opens the live monitor of a room in the default browser. The credentials travel in the URL fragment
/// (built by MonitorLinks.BuildUrl), which browsers never send to the server, so the token stays out of logs.
/// </summary>
[Cmdlet(VerbsCommon.Show, "SleapMonitor", HelpUri = ModuleLinks.Docs + "Show-SleapMonitor.md")]
[OutputType(typeof(string))]
public sealed class ShowSleapMonitorCommand : SleapCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(RoomIdCompleter))]
    public string RoomId { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Token { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ServerCompleter))]
    [ServerList]
    public string? Server { get; set; }

    /// <summary>Only output the URL; do not try to start a browser.</summary>
    [Parameter]
    public SwitchParameter NoBrowser { get; set; }

    /// <summary>Output the URL as well after opening the browser.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        ResolvedRoom room;
        try { room = RoomTarget.Resolve(RoomId, Token, Server); }
        catch (SleapRtcException ex)
        {
            WriteError(SleapErrors.FromLibrary(ex, RoomId));
            return;
        }
        // Every instance of a deployment serves the whole room's monitor: the page goes to the first of a server list.
        var server = room.Server!.Split(SignalingEndpoints.ListSeparator).Select(s => s.Trim()).FirstOrDefault(s => s.Length > 0) ?? room.Server!;

        string url;
        try { url = MonitorLinks.BuildUrl(server, room.RoomId, room.Token); }
        catch (ArgumentException ex)
        {
            WriteError(SleapErrors.InvalidServerAddress(server, ex));
            return;
        }

        if (NoBrowser)
        {
            WriteObject(url);
            return;
        }
        if (!TryOpenBrowser(url, out var whyNot))
        {
            WriteVerbose($"No browser could be opened ({whyNot}); open the URL yourself.");
            WriteObject(url);
            return;
        }
        WriteVerbose($"Opened the monitor of room {room.RoomId} in the default browser.");
        if (PassThru) WriteObject(url);
        else Host.UI.WriteLine(url);
    }

    private static bool TryOpenBrowser(string url, out string whyNot)
    {
        // On Linux without a display, xdg-open would "succeed" by starting a text browser or nothing at all.
        if (RuntimeInformation.IsOSPlatform(OSPlatform.Linux)
            && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("DISPLAY"))
            && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("WAYLAND_DISPLAY")))
        {
            whyNot = "no graphical display (DISPLAY and WAYLAND_DISPLAY are unset)";
            return false;
        }
        try
        {
            // UseShellExecute hands the URL to xdg-open / open / the Windows shell, i.e. the user's default browser.
            using var process = Process.Start(new ProcessStartInfo(url) { UseShellExecute = true });
            whyNot = "";
            return true;
        }
        catch (Exception ex) when (ex is Win32Exception or InvalidOperationException or PlatformNotSupportedException)
        {
            whyNot = ex.Message;
            return false;
        }
    }
}
