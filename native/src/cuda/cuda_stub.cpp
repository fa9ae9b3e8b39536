// Built in place of the CUDA backend when nvcc is absent or CM4J_CUDA=OFF.
#include "backend.h"
#include "cm4j.h"

namespace cm4j {

std::unique_ptr<Backend> make_cuda_backend(int, int, std::string* error) {
  *error = "CUDA unavailable: this cm4j library was built without the CUDA backend";
  return nullptr;
}

int cuda_device_count(std::string* error) {
  *error = "CUDA unavailable: this cm4j library was built without the CUDA backend";
  return 0;
}

}  // namespace cm4j
