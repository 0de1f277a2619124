# The seed's usage example, unchanged except for the URL (the test points BASE at its server).
import requests

BASE = "http://localhost:5000"

# Generate a movie script
response = requests.post(f"{BASE}/generate-movie-auto", json={
    "idea": "A detective solving mysteries in a cyberpunk city",
    "total_segments": 30,
    "segments_per_set": 10,
    "save_to_files": True,
    "max_retries": 3
})

result = response.json()["result"]
print(f"Success: {result['success']}")
print(f"Generated {result['generation_summary']['total_segments_generated']} segments")

# Retry failed sets if needed
if not result["success"] and result["retry_info"]["can_retry"]:
    retry_response = requests.post(f"{BASE}/retry-failed-story-sets", json={
        "previous_result": result,
        "max_retries": 3
    })
    final_result = retry_response.json()["result"]
    print(f"Final success: {final_result['success']}")
