using System.Diagnostics;

namespace SleapRtc.PowerShell.Tests;

/// <summary>
/// The module in a real pwsh process (the PowerShell .NET tool pinned in .config/dotnet-tools.json), the way a
/// scheduled task or a lab script runs it: standard input redirected and closed, its own data folder.
/// </summary>
public sealed class ScriptHostTests
{
    private static readonly TimeSpan ScriptTimeout = TimeSpan.FromSeconds(120);

    /// <summary>Runs a script file with `dotnet pwsh -NoProfile -File`, stdin closed (as `&lt;/dev/null`), and returns stdout.</summary>
    private static string RunPwsh(string script, string dataDirectory)
    {
        var directory = TestEnvironment.NewDirectory("pwsh");
        var path = Path.Combine(directory, "script.ps1");
        File.WriteAllText(path, $"Import-Module '{RepoPaths.Manifest.Replace("'", "''")}' -ErrorAction Stop\n" + script);
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = RepoPaths.Root,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "pwsh", "-NoProfile", "-File", path }) start.ArgumentList.Add(argument);
        start.Environment["SLEAP_RTC_DATA_DIR"] = dataDirectory;
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(ScriptTimeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"pwsh did not finish within {ScriptTimeout.TotalSeconds} s: {stdout.Result}{stderr.Result}");
        }
        var output = stdout.Result;
        Assert.True(process.ExitCode == 0, $"pwsh exited with {process.ExitCode}:\n{output}\n{stderr.Result}");
        return output;
    }

    private static string Fixture(string name) => TestEnvironment.Fixture(name).Replace("'", "''");

    [Fact]
    public void With_stdin_redirected_interactive_selection_is_a_NoInteractiveHost_error_naming_the_switches()
    {
        var output = RunPwsh($$"""
            $server = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'
            $worker = Start-SleapWorker -Server $server.Url -NvidiaSmiPath '{{Fixture("nvidia-smi")}}' -SleapNnPath '{{Fixture("sleap-nn")}}' -InformationAction SilentlyContinue
            try { Select-SleapWorker -RoomId $worker.RoomId -ErrorAction Stop; 'selected' }
            catch { 'ID=' + $_.FullyQualifiedErrorId; 'ACTION=' + $_.ErrorDetails.RecommendedAction; 'CATEGORY=' + $_.CategoryInfo.Category }
            """, TestEnvironment.NewDirectory("pwsh-data"));
        Assert.Contains("ID=NoInteractiveHost,", output);
        Assert.Contains("CATEGORY=InvalidArgument", output);
        var action = output.Split('\n').Single(l => l.StartsWith("ACTION=", StringComparison.Ordinal));
        Assert.Contains("-AutoSelect", action);
        Assert.Contains("-WorkerId", action);
    }

    [Fact]
    public void A_bare_Get_SleapWorker_uses_the_only_saved_room()
    {
        var data = TestEnvironment.NewDirectory("pwsh-one-room");
        // Quoted twice: inside a single-quoted script that is itself in single quotes.
        var manifest = RepoPaths.Manifest.Replace("'", "''''");
        var output = RunPwsh($$"""
            $server = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'
            $room = New-SleapRoom -Server $server.Url
            $worker = $room | Start-SleapWorker -NvidiaSmiPath '{{Fixture("nvidia-smi")}}' -SleapNnPath '{{Fixture("sleap-nn")}}' -InformationAction SilentlyContinue
            # A new runspace: nothing created there, so only the saved credentials can name the room.
            $fresh = [runspacefactory]::CreateRunspace()
            $fresh.Open()
            $ps = [powershell]::Create()
            $ps.Runspace = $fresh
            $found = $ps.AddScript('Import-Module ''{{manifest}}''; Get-SleapWorker | ForEach-Object PeerId').Invoke()
            'FOUND=' + ($found -join ',')
            'WORKER=' + $worker.PeerId
            'ERRORS=' + ($ps.Streams.Error -join ';')
            """, data);
        var lines = output.Split('\n').Select(l => l.Trim()).ToList();
        var worker = lines.Single(l => l.StartsWith("WORKER=", StringComparison.Ordinal))["WORKER=".Length..];
        Assert.Contains("FOUND=" + worker, lines);
        Assert.Contains("ERRORS=", lines);
    }
}
