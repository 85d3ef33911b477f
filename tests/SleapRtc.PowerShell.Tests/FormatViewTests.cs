namespace SleapRtc.PowerShell.Tests;

/// <summary>What users see at the prompt: the default views, rendered by Out-Host into the test host.</summary>
public sealed class FormatViewTests
{
    private static string Render(string script)
    {
        using var ps = new HostedPowerShell();
        ps.Run(script + " | Out-Host").ThrowOnError();
        // Header styling escapes depend on the host's terminal support; compare the text only.
        return System.Text.RegularExpressions.Regex.Replace(ps.Host.TestUI.Transcript, "\u001b\\[[0-9;]*m", "");
    }

    [Fact]
    public void Worker_table_shows_the_contracted_columns_and_the_GpuMemoryGB_alias_works()
    {
        var text = Render("[SleapRtc.WorkerInfo]@{ PeerId = 'worker-a'; GpuModel = 'NVIDIA A100'; GpuMemoryMB = 40960; Status = 'available'; Hostname = 'gpu-box'; Token = 'secret-room-token' }");
        var header = text.Split('\n').First(l => l.Contains("PeerId"));
        Assert.Equal(new[] { "PeerId", "GpuModel", "GpuMemoryMB", "Status", "Hostname" },
            header.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("NVIDIA A100", text);
        Assert.DoesNotContain("secret-room-token", text);

        using var ps = new HostedPowerShell();
        var gb = ps.Run("([SleapRtc.WorkerInfo]@{ GpuMemoryMB = 40960 }).GpuMemoryGB").Single<double>();
        Assert.Equal(40.0, gb);
    }

    [Fact]
    public void Room_views_never_show_the_full_token()
    {
        const string room = "[SleapRtc.Room]@{ RoomId = 'room-1'; Token = 'abcdefghijklmnopqrstuvwxyz'; Name = 'lab'; Server = 'http://s:8080' }";
        var table = Render(room);
        Assert.Contains("abcd********", table);
        Assert.DoesNotContain("abcdefghijklmnop", table);
        Assert.Contains("room-1", table);
    }

    [Fact]
    public void Every_output_type_has_a_view_and_no_view_shows_a_raw_token()
    {
        var format = System.Xml.Linq.XDocument.Load(Path.Combine(RepoPaths.Root, "bin", "SleapRtc.format.ps1xml"));
        var views = format.Descendants("View").ToList();
        var typesWithViews = views.SelectMany(v => v.Descendants("TypeName")).Select(t => t.Value).ToHashSet();
        foreach (var type in new[] { "SleapRtc.WorkerInfo", "SleapRtc.WorkerSession", "SleapRtc.Room", "SleapRtc.SessionInfo",
                     "SleapRtc.TrainingResult", "SleapRtc.SignalingServer", "SleapRtc.JobProgress", "SleapRtc.JobInfo" })
            Assert.Contains(type, typesWithViews);
        // Token columns only ever come from MaskedToken or a masking script block.
        Assert.DoesNotContain(views.SelectMany(v => v.Descendants("PropertyName")), p => p.Value == "Token");
    }

    [Fact]
    public void Session_views_mask_tokens()
    {
        var session = Render("[SleapRtc.SessionInfo]@{ RoomId = 'r'; Token = 'abcdefghijklmnop'; PeerId = 'p' }");
        Assert.Contains("abcd********", session);
        Assert.DoesNotContain("abcdefghijklmnop", session);
        var worker = Render("[SleapRtc.WorkerSession]@{ PeerId = 'p'; RoomId = 'r'; Token = 'abcdefghijklmnop' }");
        Assert.DoesNotContain("abcdefghijklmnop", worker);
    }

    [Fact]
    public void Training_result_view_shows_status_worker_and_model_count()
    {
        var text = Render("[SleapRtc.TrainingResult]@{ JobId = 'job-7'; WorkerId = 'worker-a'; Status = 'Succeeded'; ModelPaths = @('a.ckpt', 'b.ckpt'); OutputPath = '/tmp/models'; Duration = [timespan]::FromMinutes(3) }");
        var header = text.Split('\n').First(l => l.Contains("JobId"));
        Assert.Equal(new[] { "JobId", "WorkerId", "Status", "Duration", "Models", "OutputPath" }, header.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("00:03:00", text);
        Assert.Matches(@"job-7\s+worker-a\s+Succeeded\s+00:03:00\s+2\s+/tmp/models", text);
    }

    [Fact]
    public void Server_view_shows_url_port_and_state()
    {
        var text = Render("[SleapRtc.SignalingServer]@{ Url = 'http://127.0.0.1:5000'; Port = 5000; State = 'Running' }");
        Assert.Matches(@"http://127\.0\.0\.1:5000\s+5000\s+Running", text);
    }

    // A lab's realistic values: UUID peer ids as the server issues them, the longest GPU name of the recorded
    // nvidia-smi, a LAN server URL, a short host name.
    private const string PeerA = "a3f1c2d4-5b6e-4f70-8192-a3b4c5d6e7f8";
    private const string PeerB = "b07e9d1c-2a3b-4c5d-8e9f-0a1b2c3d4e5f";
    private const string LanServer = "ws://192.168.10.20:8080";

    public static TheoryData<string, string[], string[]> DefaultTables => new()
    {
        {
            $"@([SleapRtc.WorkerInfo]@{{ PeerId = '{PeerA}'; GpuModel = 'NVIDIA GeForce RTX 4090'; GpuMemoryMB = 24564; Status = 'available'; Hostname = 'gpu-node-07.lab' }}, " +
            $"[SleapRtc.WorkerInfo]@{{ PeerId = '{PeerB}'; GpuModel = 'NVIDIA GeForce GTX 1080 Ti'; GpuMemoryMB = 11264; Status = 'reserved'; Hostname = 'gpu-node-07.lab' }})",
            new[] { "PeerId", "GpuModel", "GpuMemoryMB", "Status", "Hostname" },
            new[] { "a3f1c2d4", "b07e9d1c", "NVIDIA GeForce GTX 1080 Ti", "24564", "available", "reserved", "gpu-node-07.lab" }
        },
        {
            $"[SleapRtc.WorkerSession]@{{ PeerId = '{PeerA}'; RoomId = '2e245701'; Token = 'abcdefabcdefabcdefabcdefabcdef12'; GpuModel = 'NVIDIA GeForce GTX 1080 Ti'; GpuMemoryMB = 11264; Status = 'available'; Server = '{LanServer}'; GpuId = 2 }}",
            new[] { "PeerId", "RoomId", "GpuModel", "Status", "Server" },
            new[] { "a3f1c2d4", "2e245701", "NVIDIA GeForce GTX 1080 Ti", "available", LanServer }
        },
        {
            $"[SleapRtc.TrainingResult]@{{ JobId = 'job_3f9a1c2e4b5d'; WorkerId = '{PeerA}'; Status = 'Succeeded'; ModelPaths = @('a.ckpt', 'b.ckpt'); OutputPath = '/home/alice/models'; Duration = [timespan]::FromMinutes(83); UploadMBps = 87.123456 }}",
            new[] { "JobId", "WorkerId", "Status", "Duration", "Models", "OutputPath" },
            new[] { "job_3f9a1c2e4b5d", "a3f1c2d4", "Succeeded", "01:23:00", "/home/alice/models" }
        },
        {
            $"[SleapRtc.Room]@{{ RoomId = '2e245701'; Name = 'lab-gpus'; Token = 'abcdefabcdefabcdefabcdefabcdef12'; ExpiresAt = [datetimeoffset]'2026-12-09T10:30:00Z'; Server = '{LanServer}' }}",
            new[] { "RoomId", "Name", "Token", "ExpiresAt", "Server" },
            new[] { "2e245701", "lab-gpus", "abcd********", "2026-12-09", LanServer }
        },
        {
            $"[SleapRtc.SessionInfo]@{{ RoomId = '2e245701'; PeerId = '{PeerA}'; Token = 'abcdefabcdefabcdefabcdefabcdef12'; Server = '{LanServer}' }}",
            new[] { "RoomId", "PeerId", "Token", "Server" },
            new[] { "2e245701", "a3f1c2d4", "abcd********", LanServer }
        },
        {
            "[SleapRtc.SignalingServer]@{ Url = 'http://192.168.10.20:8080'; Port = 8080; State = 'Running'; StartedAt = [datetimeoffset]'2026-12-02T09:15:00Z'; DatabasePath = '/home/alice/.local/share/SleapRtc/rooms.db' }",
            new[] { "Url", "Port", "State", "StartedAt" },
            new[] { "http://192.168.10.20:8080", "8080", "Running", "2026-12-02" }
        },
        {
            "[SleapRtc.JobProgress]@{ Phase = 'training'; ConfigIndex = 2; ConfigCount = 3; Epoch = 137; EpochCount = 200; Loss = 0.0123456789012; ValLoss = 0.0234567890123 }",
            new[] { "Phase", "Config", "Epoch", "Loss", "ValLoss" },
            new[] { "training", "2/3", "137/200", "0.0123456789012", "0.0234567890123" }
        },
        {
            // A running job, a queued one (its place in the queue) and a failed one, as Get-SleapJob lists a night's work.
            $"@([SleapRtc.JobInfo]@{{ JobId = 'job_3f9a1c2e4b5d'; State = 'Running'; WorkerId = '{PeerA}'; PackageName = 'labels.v001.pkg.zip'; Epoch = 137; EpochCount = 200; Loss = 0.0123456789; Token = 'abcdefabcdefabcdefabcdefabcdef12' }}, " +
            "[SleapRtc.JobInfo]@{ JobId = 'job_0a1b2c3d4e5f'; State = 'Queued'; Position = 12; PackageName = 'mice-topdown.pkg.zip' }, " +
            $"[SleapRtc.JobInfo]@{{ JobId = 'job_99aa88bb77cc'; State = 'Cancelled'; WorkerId = '{PeerB}'; PackageName = 'flies.pkg.zip'; Epoch = 3; EpochCount = 1000; Error = 'stopped by alice' }})",
            new[] { "JobId", "State", "WorkerId", "Pos", "Epoch", "Loss", "Package" },
            new[] { "job_3f9a1c2e4b5d", "Running", "a3f1c2d4", "137/200", "0.0123", "labels.v001.pkg.zip", "Queued", "12", "mice-topdown.pkg.zip", "Cancelled", "3/1000", "b07e9d1c" }
        },
    };

    [Theory]
    [MemberData(nameof(DefaultTables))]
    public void Every_default_table_fits_80_columns_with_its_key_columns_whole(string objects, string[] headers, string[] values)
    {
        using var ps = new HostedPowerShell(consoleWidth: 80);
        ps.Run(objects + " | Out-Host").ThrowOnError();
        var text = System.Text.RegularExpressions.Regex.Replace(ps.Host.TestUI.Transcript, "\u001b\\[[0-9;]*m", "");

        Assert.DoesNotContain("\u2026", text); // the formatter's truncation mark
        Assert.All(text.Split('\n'), line => Assert.True(line.TrimEnd().Length <= 80, $"wider than 80 columns:\n{text}"));
        // One header line with every key column, none wrapped onto a second line.
        var header = text.Split('\n').First(l => l.TrimStart().StartsWith(headers[0], StringComparison.Ordinal));
        Assert.Equal(headers, header.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        foreach (var value in values) Assert.Contains(value, text);
        Assert.DoesNotContain("abcdefabcdef", text);
    }

    [Fact]
    public void Peer_ids_are_short_in_tables_only_when_they_are_server_issued_uuids()
    {
        using var ps = new HostedPowerShell();
        Assert.Equal("a3f1c2d4", ps.Run($"[SleapRtc.DisplayText]::ShortPeerId('{PeerA}')").Single<string>());
        // A readable id a peer chose is shown whole: cutting it would make it ambiguous.
        Assert.Equal("worker-gpu-box-0", ps.Run("[SleapRtc.DisplayText]::ShortPeerId('worker-gpu-box-0')").Single<string>());
        // The object keeps the full id for scripts and -WorkerId.
        Assert.Equal(PeerA, ps.Run($"([SleapRtc.WorkerInfo]@{{ PeerId = '{PeerA}' }}).PeerId").Single<string>());
    }

    [Fact]
    public void Training_result_list_rounds_the_upload_rate()
    {
        // Format-List is not part of the hosted engine, so evaluate the list view's item on the object.
        var format = System.Xml.Linq.XDocument.Load(Path.Combine(RepoPaths.Root, "bin", "SleapRtc.format.ps1xml"));
        var item = format.Descendants("View").Single(v => (string?)v.Element("Name") == "SleapRtc.TrainingResult.List")
            .Descendants("ListItem").Single(i => ((string?)i.Element("Label") ?? (string?)i.Element("PropertyName")) == "UploadMBps");
        var expression = item.Element("ScriptBlock")?.Value ?? "$_." + item.Element("PropertyName")!.Value;
        using var ps = new HostedPowerShell();
        var shown = ps.Run("[SleapRtc.TrainingResult]@{ UploadMBps = 87.123456 } | ForEach-Object { " + expression + " }").ThrowOnError().Output.Single();
        Assert.Equal("87.1", shown.ToString());
    }
}
