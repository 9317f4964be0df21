package schema

// ValidateFile reads one manifest file (.yaml, .yml, .json or .cue by its
// name) and returns its valid objects and the problems of the others.
func (s *Schema) ValidateFile(name string, data []byte) ([]*Object, ErrorList) {
	return s.validateFile(name, data, DefaultMaxFileSize)
}

func (s *Schema) validateFile(name string, data []byte, maxSize int64) ([]*Object, ErrorList) {
	docs, errs := parseFile(name, data, maxSize)
	if len(errs) > 0 {
		return nil, errs
	}
	e, err := s.get()
	if err != nil {
		return nil, ErrorList{{File: name, Msg: err.Error()}}
	}
	defer s.put(e)
	return e.validateDocs(name, docs)
}
