# Shared set-up for the Pester 5 files: import the BUILT module from the repo root and keep test state private.
$script:RepoRoot = Split-Path -Parent $PSScriptRoot
$env:SLEAP_RTC_DATA_DIR = Join-Path ([System.IO.Path]::GetTempPath()) "sleaprtc-pester-$PID"
$env:SLEAP_RTC_LOCAL_ADDRESSES = '127.0.0.1'
$env:SLEAP_NN_STANDIN_EPOCH_SECONDS = '0.02'
Import-Module (Join-Path $script:RepoRoot 'SleapRtc.psd1') -Force -ErrorAction Stop

function Complete([string] $Line) {
    [System.Management.Automation.CommandCompletion]::CompleteInput($Line, $Line.Length, $null).CompletionMatches
}

function New-TestPackage([string] $Directory, [string] $Name = 'labels.v001', [int] $Epochs = 2) {
    Add-Type -AssemblyName System.IO.Compression.FileSystem
    $null = New-Item -ItemType Directory -Force -Path $Directory
    $zipPath = Join-Path $Directory "$Name.zip"
    $zip = [System.IO.Compression.ZipFile]::Open($zipPath, 'Create')
    try {
        $entries = @{
            "$Name/config.json"          = "{""trainer_config"": {""max_epochs"": $Epochs}}"
            "$Name/train-script.sh"      = "#!/bin/bash`nsleap-nn train --config-name config.json --config-dir .`n"
            "$Name/labels.v001.pkg.slp"  = 'x' * 4096
        }
        foreach ($entry in $entries.GetEnumerator()) {
            $writer = [System.IO.StreamWriter]::new($zip.CreateEntry($entry.Key).Open())
            try { $writer.Write($entry.Value) } finally { $writer.Dispose() }
        }
    }
    finally { $zip.Dispose() }
    $zipPath
}
